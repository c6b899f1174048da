// The server that test/load.test.ts puts under load, in a process of its own. It uses the built
// package through its own name, as an application would. Configured by the environment:
//   LOAD_SESSION_KEYS  comma-separated Fernet keys, the first encrypts (the plugin's own format)
//   LOAD_PORT          port on 127.0.0.1 (0: any free port)
//   LOAD_EPOCH         a label sent back in x-epoch, so clients know which server answered
// It tells its parent over IPC { type: 'listening', port }, and on the message 'stop' closes,
// answers { type: 'stopped', served, statuses } and exits. It exits too when the parent goes
// away, and after LOAD_MAX_SECONDS (default 300) whatever happens, so it can never linger.
import Fastify from 'fastify'
import encryptedSession from 'fastify-encrypted-session'

const keys = process.env.LOAD_SESSION_KEYS
const port = Number(process.env.LOAD_PORT ?? 0)
const epoch = process.env.LOAD_EPOCH ?? '0'
const maxSeconds = Number(process.env.LOAD_MAX_SECONDS ?? 300)

setTimeout(() => process.exit(3), maxSeconds * 1000).unref()
process.on('disconnect', () => process.exit(0))

let served = 0
const statuses = {}

// Logs at warn and above go to stdout as JSON lines; the test fails on any. While it closes
// for a restart, requests already on a connection are served (not answered 503), as a
// server behind a proxy that drains it would.
const app = Fastify({ logger: { level: 'warn' }, keepAliveTimeout: 30_000, return503OnClosing: false })
await app.register(encryptedSession, { key: keys, cookie: { secure: false } })

app.addHook('onResponse', async (request, reply) => {
  served++
  statuses[reply.statusCode] = (statuses[reply.statusCode] ?? 0) + 1
})

function view (session) {
  return { id: session.get('id') ?? null, nonce: session.get('nonce') ?? null, count: session.get('count') ?? null, isNew: session.isNew }
}

// A client's id and nonce are taken only for a new session; after that they come from the
// session alone, so a response carrying another client's id can only come from a mixed session.
app.post('/hit', async (request, reply) => {
  const session = request.session
  if (session.isNew) {
    session.set('id', String(request.headers['x-client-id']))
    session.set('nonce', String(request.headers['x-client-nonce']))
    session.set('count', 0)
  }
  session.set('count', session.get('count') + 1)
  reply.header('x-epoch', epoch)
  return view(session)
})

// Reads without changing anything: a Set-Cookie here can only be a re-issue (rotation).
app.get('/peek', async (request, reply) => {
  reply.header('x-epoch', epoch)
  return view(request.session)
})

process.on('message', (message) => {
  if (message !== 'stop') return
  app.close().then(() => {
    process.send({ type: 'stopped', served, statuses }, () => process.disconnect())
  })
})

await app.listen({ host: '127.0.0.1', port })
process.send({ type: 'listening', port: app.server.address().port })
