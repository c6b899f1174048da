// One benchmark server: a Fastify app for one variant, on 127.0.0.1 and an ephemeral port.
// Started by bench/run.js with child_process.fork; it reports its port over IPC, exits when
// the harness disconnects, and in any case after BENCH_MAX_LIFETIME_MS (a bounded lifetime).
//
//   BENCH_VARIANT   bare | ours | secure-session | iron | node-fernet
//   BENCH_KEY       Fernet key (ours, node-fernet)
//   BENCH_SECURE_KEY  32 bytes in base64 (secure-session)
//   BENCH_IRON_PASSWORD  at least 32 characters (iron)
//
// Routes (every session variant): GET /untouched, /read, /write, /login; and GET /__mem.
// /read and /write answer 401 when the request carried no valid session, so a bad cookie
// shows up as non-2xx in the load generator instead of as a suspiciously fast run.
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import secureJson from 'secure-json-parse'
import { TTL, USER, VISITS, pluginEntry } from './common.js'
import { NodeFernet } from './node-fernet.js'

const variant = process.env.BENCH_VARIANT
const maxLifetime = Number(process.env.BENCH_MAX_LIFETIME_MS ?? 600_000)
setTimeout(() => {
  console.error(`bench server (${variant}): lifetime of ${maxLifetime} ms reached, exiting`)
  process.exit(3)
}, maxLifetime).unref()
process.on('disconnect', () => process.exit(0))

const cookieAttributes = { path: '/', httpOnly: true, sameSite: 'lax', secure: false, maxAge: TTL }

/** The session object the hook-based variants hand to routes: get/set and a changed flag. */
class HookSession {
  constructor (data) {
    this.data = data
    this.changed = false
  }

  get (key) { return this.data[key] }
  set (key, value) {
    this.data[key] = value
    this.changed = true
  }
}

const app = Fastify({ logger: false })
await app.register(fastifyCookie)

switch (variant) {
  case 'bare':
    break
  case 'ours': {
    const { default: encryptedSession } = await import(pluginEntry())
    await app.register(encryptedSession, { key: process.env.BENCH_KEY, ttl: TTL, cookie: { secure: false } })
    break
  }
  case 'secure-session': {
    const { default: secureSession } = await import('@fastify/secure-session')
    await app.register(secureSession, {
      key: Buffer.from(process.env.BENCH_SECURE_KEY, 'base64'),
      expiry: TTL,
      cookie: { ...cookieAttributes }
    })
    break
  }
  case 'iron': {
    // iron-session's documented seal/unseal helpers, in the same hooks as the node:crypto variant.
    const { sealData, unsealData } = await import('iron-session')
    const password = process.env.BENCH_IRON_PASSWORD
    app.decorateRequest('session', null)
    app.addHook('onRequest', async (request) => {
      const token = request.cookies.session
      // unsealData answers {} for a bad or expired seal.
      const data = token === undefined ? {} : await unsealData(token, { password, ttl: TTL })
      request.session = new HookSession(data)
    })
    app.addHook('onSend', async (request, reply, payload) => {
      const session = request.session
      if (session !== null && session.changed) {
        reply.setCookie('session', await sealData(session.data, { password, ttl: TTL }), cookieAttributes)
      }
      return payload
    })
    break
  }
  case 'node-fernet': {
    const fernet = new NodeFernet(process.env.BENCH_KEY)
    const raw = { ...cookieAttributes, encode: (value) => value }
    app.decorateRequest('session', null)
    app.addHook('onRequest', (request, reply, done) => {
      const token = request.cookies.session
      let data = {}
      if (token !== undefined) {
        try {
          data = secureJson.parse(fernet.decrypt(token, { ttl: TTL }).toString('utf8'), undefined, { protoAction: 'error', constructorAction: 'error' })
        } catch {
          data = {}
        }
      }
      request.session = new HookSession(data)
      done()
    })
    app.addHook('onSend', (request, reply, payload, done) => {
      const session = request.session
      if (session !== null && session.changed) {
        reply.setCookie('session', fernet.encrypt(JSON.stringify(session.data)), raw)
      }
      done(null, payload)
    })
    break
  }
  default:
    throw new Error(`unknown BENCH_VARIANT ${JSON.stringify(variant)}`)
}

const unauthorized = (reply) => reply.code(401).send({ error: 'no session' })

// Fault injection, to check that the harness fails loudly: BENCH_INJECT_FAULT=variant/route
// makes that route answer 500 from its 20th request on (the harness's checks pass first).
const [faultVariant, faultRoute] = (process.env.BENCH_INJECT_FAULT ?? '').split('/')
if (faultVariant === variant) {
  let seen = 0
  app.addHook('onRequest', (request, reply, done) => {
    if (request.url === `/${faultRoute}` && ++seen >= 20) reply.code(500).send({ error: 'injected fault' })
    else done()
  })
}

if (variant === 'bare') {
  app.get('/bare', async () => ({ ok: true }))
} else {
  app.get('/untouched', async () => ({ ok: true }))
  app.get('/read', async (request, reply) => {
    const user = request.session.get('user')
    if (user === undefined) return unauthorized(reply)
    return { name: user.name }
  })
  app.get('/write', async (request, reply) => {
    const user = request.session.get('user')
    if (user === undefined) return unauthorized(reply)
    const visits = request.session.get('visits') + 1
    request.session.set('visits', visits)
    return { name: user.name, visits }
  })
  app.get('/login', async (request) => {
    request.session.set('user', { ...USER, roles: [...USER.roles] })
    request.session.set('visits', VISITS)
    return { ok: true }
  })
}

app.get('/__mem', async (request) => {
  const before = process.memoryUsage()
  let afterGc = null
  if (request.query.gc === '1' && typeof globalThis.gc === 'function') {
    globalThis.gc()
    afterGc = process.memoryUsage()
  }
  return { before, afterGc }
})

const address = await app.listen({ host: '127.0.0.1', port: 0 })
process.send({ type: 'ready', port: app.server.address().port, address })
