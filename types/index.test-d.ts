// Type tests: compiled by `npm run typecheck` (tsc -p types). A line marked @ts-expect-error
// fails the build if it ever compiles, so the negative cases are checked too.
import Fastify, { type FastifyInstance } from 'fastify'
import encryptedSession, {
  type EncryptedSessionOptions,
  Fernet,
  InvalidToken,
  MultiFernet,
  Session,
  deriveKey,
  encryptedSession as named
} from 'fastify-encrypted-session'
import { Fernet as FernetFromSubpath } from 'fastify-encrypted-session/fernet'
import { type MemoryExpressStore, MemoryStore, SessionNotStoredError, SessionStoreError, type SessionStore } from 'fastify-encrypted-session'
import { RedisStore } from 'fastify-encrypted-session/redis'
import { createClient, createCluster, createSentinel } from 'redis'
import { Cluster, Redis } from 'ioredis'

declare module 'fastify-encrypted-session' {
  interface SessionData {
    visits: number
    profile: { name: string, roles: string[] }
    current_user: { id: number }
  }
}

function expectType<T> (value: T): T { return value }

const app: FastifyInstance = Fastify()
app.register(encryptedSession, { key: Fernet.generateKey() })
app.register(named, { key: [Fernet.generateKey(), new Uint8Array(32)], ttl: 3600, rolling: 600, cookie: { secure: 'auto', sameSite: 'strict' } })
app.register(encryptedSession, { secret: 'passphrase', salt: 'sixteen bytes salt', iterations: 100_000, sessionName: 'admin' })
// @ts-expect-error ttl is a number of seconds
app.register(encryptedSession, { key: 'k', ttl: '1h' })
// @ts-expect-error cookie lifetime comes from ttl
app.register(encryptedSession, { key: 'k', cookie: { maxAge: 5 } })

const options: EncryptedSessionOptions = { key: 'a,b' }
expectType<EncryptedSessionOptions>(options)

app.get('/', async (request) => {
  const visits = (request.session.get('visits') ?? 0) + 1
  expectType<number | undefined>(request.session.get('visits'))
  expectType<{ name: string, roles: string[] } | undefined>(request.session.get('profile'))
  request.session.set('visits', visits)
  // @ts-expect-error visits is a number
  request.session.set('visits', 'many')
  // @ts-expect-error profile needs roles
  request.session.set('profile', { name: 'ada' })
  request.session.set('anything', { undeclared: true })
  expectType<boolean>(request.session.has('visits'))
  expectType<boolean>(request.session.changed)
  expectType<boolean>(request.session.isNew)
  expectType<void>(request.session.delete('visits'))
  expectType<void>(request.session.touch())
  expectType<void>(request.session.clear())
  expectType<Promise<void>>(request.session.destroy())
  expectType<number | undefined>(request.session.data().visits)
  request.session.login({ id: 1 })
  // @ts-expect-error the logged-in user is typed by SessionData.current_user
  request.session.login({ name: 'ada' })
  expectType<{ id: number } | undefined>(request.session.user)
  request.session.logout()
  request.session.flash('info', 'Saved')
  expectType<Array<{ category: string, message: string }>>(request.session.flashes('info'))
  return { visits }
})

app.get('/private', { preHandler: app.requireLogin, config: { onLoginRequired: async (_request, reply) => await reply.redirect('/login') } }, async () => 'ok')
app.decodeSession({ session: 'token', 'session.0': undefined }).then((session) => expectType<Session>(session)).catch(() => {})

async function outside (): Promise<void> {
  const token: string = await app.encodeSession({ visits: 1 })
  const session: Session = await app.decodeSession(token, 'admin')
  expectType<boolean>(session.isNew)
  // @ts-expect-error encodeSession takes session data
  await app.encodeSession('not data')
}
void outside

async function fernetApi (): Promise<void> {
  const key: string = Fernet.generateKey()
  const fernet = new Fernet(key)
  const token: string = await fernet.encrypt('x')
  expectType<Uint8Array>(await fernet.decrypt(token, { ttl: 60 }))
  expectType<Uint8Array>(await fernet.decryptAtTime(token, 60, 1_700_000_000))
  expectType<number>(await fernet.extractTimestamp(token))
  const multi = new MultiFernet([fernet, Fernet.generateKey()])
  expectType<string>(await multi.rotate(token))
  expectType<number>((await multi.decryptDetailed(token)).keyIndex)
  expectType<string>(await deriveKey('p', 'sixteen bytes salt', { iterations: 1000 }))
  expectType<Error>(new InvalidToken())
  expectType<typeof Fernet>(FernetFromSubpath)
  // @ts-expect-error a key is text or bytes
  new Fernet(42) // eslint-disable-line no-new
}
void fernetApi

// Store mode, property access and the newer calls, as a user types them.
app.register(encryptedSession, { key: Fernet.generateKey(), maxTtl: 30 * 86_400, store: new MemoryStore({ maxEntries: 10 }), storeTimeout: 500, encryptStore: false, userId: (user) => (user as { id: number }).id })
// @ts-expect-error storeTimeout is milliseconds, a number
app.register(encryptedSession, { key: 'k', store: new MemoryStore(), storeTimeout: '2s' })
const aStore: SessionStore = new MemoryStore()
void aStore
expectType<Promise<void>>(app.revokeSessions('ada'))
expectType<Promise<void>>(app.revokeSessions('ada', 'session'))
app.get('/password', async (request) => { await app.revokeSessions(1, { except: request.session, sessionName: 'session' }) })
// @ts-expect-error except takes a session
void app.revokeSessions('ada', { except: 'this one' })
app.register(encryptedSession, { key: Fernet.generateKey(), revocationStore: new MemoryStore(), storeTimeout: 500 })
expectType<number>(new SessionStoreError('get', 'down').statusCode)
expectType<(error: unknown) => boolean>((error) => error instanceof SessionNotStoredError && error.code === 'FST_SESSION_STORE_FULL')
const expressView: MemoryExpressStore = new MemoryStore().expressStore({ loggedIn: (session) => session.role === 'member', ttl: 60_000 })
expressView.get('sid', (_error, session) => { expectType<unknown>(session?.cookie?.expires) })
// @ts-expect-error ttl is milliseconds, a number
new MemoryStore().expressStore({ ttl: '1d' })
app.get('/typed', async (request) => {
  expectType<number | undefined>(request.session.visits)
  request.session.visits = 3
  // @ts-expect-error SessionData says visits is a number
  request.session.visits = 'three'
  // @ts-expect-error a key SessionData does not name is not a typed property: use get()/set()
  void request.session.notDeclared
  expectType<Promise<void>>(request.session.regenerate(['visits']))
  request.session.options({ maxAge: 3600, sameSite: 'strict', userInfo: 'passed through by other plugins' })
  expectType<boolean>(request.session.deleted)
  return null
})
// Every client the store takes, of both libraries, type-checks as its client.
void new RedisStore({ client: createClient(), prefix: 'app:' })
void new RedisStore({ client: createCluster({ rootNodes: [] }) })
void new RedisStore({ client: createSentinel({ name: 'sessions', sentinelRootNodes: [] }) })
void new RedisStore({ client: new Redis() })
void new RedisStore({ client: new Cluster([]) })
app.register(encryptedSession, { key: Fernet.generateKey(), store: new RedisStore({ client: new Redis({ lazyConnect: true }) }) })
// @ts-expect-error a connection URL is not a client
void new RedisStore({ client: 'redis://127.0.0.1:6379' })
// @ts-expect-error RedisStore needs a client
void new RedisStore({})

// @fastify/session's members, callbacks and promises, as its users type them.
app.register(encryptedSession, { key: Fernet.generateKey(), browserSession: true })
// @ts-expect-error browserSession is true or false
app.register(encryptedSession, { key: Fernet.generateKey(), browserSession: 'yes' })
app.get('/fastify-session', (request, reply) => {
  expectType<string>(request.session.sessionId)
  expectType<string | undefined>(request.session.encryptedSessionId)
  expectType<number | null>(request.session.cookie.maxAge)
  expectType<number | null>(request.session.cookie.originalMaxAge)
  expectType<Date | null>(request.session.cookie.expires)
  request.session.cookie.maxAge = 60_000
  request.session.cookie.sameSite = 'strict'
  // @ts-expect-error sameSite is 'lax', 'strict', 'none' or a boolean
  request.session.cookie.sameSite = 'sideways'
  expectType<boolean>(request.session.isModified())
  expectType<Promise<void>>(request.session.save())
  expectType<Promise<void>>(request.session.reload())
  expectType<Promise<void>>(request.session.destroy())
  void request.session.save((error) => { expectType<Error | null>(error) })
  void request.session.regenerate(['visits'], (error) => { expectType<Error | null>(error) })
  void request.session.destroy((error) => { if (error !== null) reply.send(error); else reply.redirect('/') })
  expectType<unknown>(request.sessionStore)
  app.decryptSession('token', request, (error) => { expectType<Error | null>(error) })
  app.decryptSession('token', request, { maxAge: 1000 }, () => {})
  // @ts-expect-error decryptSession needs a callback
  app.decryptSession('token', request)
})
