// Revocation nobody slips past (issue 17): revokeSessions() ends every session of a user made
// before the call, on every store the README names, whatever their number and whatever runs at
// the same time; a later call ends what an earlier one missed; a login after the call stands;
// `except` keeps one session; cookie sessions are revocable with a revocationStore. Two server
// processes and the per-operation counts at 50,000 sessions: test/revocation-servers.test.ts.
import t, { type Test } from 'tap'
import FakeTimers from '@sinonjs/fake-timers'
import { EventEmitter } from 'node:events'
import { createRequire } from 'node:module'
import { spawnSync } from 'node:child_process'
import pg from 'pg'
import { RedisStore as ConnectRedisStore } from 'connect-redis'
import { createClient } from 'redis'
import type { FastifyInstance } from 'fastify'
import { type EncryptedSessionOptions, Fernet, MemoryStore } from '../index.js'
import { RedisStore } from '../lib/stores/redis.js'
import { buildApp, setCookie } from './helpers/app.js'
import { Jar } from './helpers/behaviours.js'
import { CallbackStore } from './helpers/express-stores.js'
import { requireStores, serversMissing, startPostgres, startRedis } from './helpers/servers.js'

const KEY = Fernet.generateKey()
// Real servers, 1,001 and 50,000 sessions on a shared 2-core box: tap's 30 s a file is too short. A bound only.
t.setTimeout(240000)
const ENDED = { isNew: true, data: {} }
const connectPgSimple = createRequire(import.meta.url)('connect-pg-simple') as (session: { Store: typeof EventEmitter }) => new (options: object) => { close: () => Promise<void> }
const PgStore = connectPgSimple({ Store: EventEmitter })

type Store = NonNullable<EncryptedSessionOptions['store']>

// eslint-disable-next-line @typescript-eslint/explicit-function-return-type -- node-redis's client type is best inferred
async function redisClient (t: Test) {
  const redis = await startRedis(t)
  const client = createClient({ url: redis.url })
  client.on('error', () => {})
  await client.connect()
  t.teardown(async () => { client.destroy() })
  return client
}

/** Every store the README names, each made fresh for one test (real servers where it needs one). */
const STORES: Array<{ name: string, skip?: string, make: (t: Test) => Promise<Store> }> = [
  { name: 'MemoryStore', make: async () => new MemoryStore() },
  { name: 'an express-session store (callbacks)', make: async () => new CallbackStore() },
  { name: 'RedisStore on a real Redis', skip: serversMissing('redis'), make: async (t) => new RedisStore({ client: await redisClient(t) }) },
  { name: 'connect-redis on a real Redis', skip: serversMissing('redis'), make: async (t) => new ConnectRedisStore({ client: await redisClient(t) }) as unknown as Store },
  {
    name: 'connect-pg-simple on a real PostgreSQL',
    skip: serversMissing('postgres'),
    make: async (t) => {
      const server = await startPostgres(t)
      const pool = new pg.Pool({ connectionString: server.connectionString })
      pool.on('error', () => {})
      const store = new PgStore({ pool, createTableIfMissing: true, pruneSessionInterval: false })
      t.teardown(async () => { await store.close(); await pool.end() })
      return store as unknown as Store
    }
  }
]

function routes (app: FastifyInstance): void {
  app.get('/login/:id', async (request) => { request.session.login({ id: (request.params as { id: string }).id }); return {} })
  app.get('/read', async (request) => ({ isNew: request.session.isNew, data: request.session.data() }))
  app.get('/set/:key/:value', async (request) => {
    const { key, value } = request.params as { key: string, value: string }
    request.session.set(key, value)
    return {}
  })
  app.get('/regenerate', async (request) => { await request.session.regenerate(['current_user']); return {} })
  app.get('/become/:id', async (request) => { request.session.set('current_user', { id: (request.params as { id: string }).id }); return {} })
  // Ended first (awaited, so a store's record is already gone), then "log out my other
  // devices": nothing is left to keep.
  app.post('/logout-and-others-out', async (request) => {
    const id = (request.session.user as { id: string }).id
    await request.session.destroy()
    await app.revokeSessions(id, { except: request.session })
    return {}
  })
  // "Log out my other devices", as a password change does it.
  app.post('/others-out', async (request) => {
    await app.revokeSessions((request.session.user as { id: string }).id, { except: request.session })
    return {}
  })
}

async function server (t: Test, options: Partial<EncryptedSessionOptions>): Promise<FastifyInstance> {
  const { app } = await buildApp({ key: KEY, ...options }, routes)
  t.teardown(async () => { await app.close() })
  return app
}

const read = async (app: FastifyInstance, cookie: string | undefined): Promise<unknown> =>
  (await app.inject({ url: '/read', cookies: cookie === undefined ? {} : { session: cookie } })).json()

async function login (app: FastifyInstance, id = 'ada'): Promise<string> {
  return setCookie(await app.inject(`/login/${id}`))?.value as string
}

for (const { name, skip, make } of STORES) {
  t.test(`${name}: no cap unlists a session; every way a session is made is ended; a later call ends what an earlier missed`, { skip: requireStores ? undefined : skip }, async (t) => {
    const store = await make(t)
    const app = await server(t, { store })
    const first = await login(app)
    // 1,000 more sessions of the user: an index capped at 1,000 ids dropped the first one.
    for (let i = 0; i < 1000; i += 100) {
      await Promise.all(Array.from({ length: 100 }, async () => await app.encodeSession({ current_user: { id: 'ada' } })))
    }
    const regenerated = setCookie(await app.inject({ url: '/regenerate', cookies: { session: await login(app) } }))?.value as string
    const encoded = await app.encodeSession({ current_user: { id: 'ada' }, note: 'made outside a request' })
    const bob = await login(app, 'bob')
    for (const cookie of [first, regenerated, encoded]) t.equal((await read(app, cookie) as { isNew: boolean }).isNew, false)
    await app.revokeSessions('ada')
    t.same(await read(app, first), ENDED, 'the first of 1,001 sessions is ended')
    t.same(await read(app, regenerated), ENDED, 'a regenerate()d one too')
    t.same(await read(app, encoded), ENDED, 'and one encodeSession() made')
    t.same(await read(app, bob), { isNew: false, data: { current_user: { id: 'bob' } } }, 'another user\'s session is not')

    // Logins while a revoke runs: each stands or not, but the next revoke ends them all.
    const during = await Promise.all([
      app.revokeSessions('ada').then(() => undefined),
      ...Array.from({ length: 10 }, async () => await login(app))
    ])
    const after = await login(app)
    t.same(await read(app, after), { isNew: false, data: { current_user: { id: 'ada' } } }, 'a login after the call resolved stands')
    await app.revokeSessions('ada')
    for (const cookie of [...during.slice(1), after]) t.same(await read(app, cookie as string), ENDED, 'a later call ends what an earlier one could have missed')
  })

  t.test(`${name}: except keeps the current session and ends the others`, { skip: requireStores ? undefined : skip }, async (t) => {
    const store = await make(t)
    const app = await server(t, { store })
    const phone = await login(app)
    const laptop = await login(app)
    const jar = new Jar()
    jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
    jar.take(await app.inject({ url: '/set/theme/dark', cookies: jar.cookies }))
    const kept = jar.take(await app.inject({ method: 'POST', url: '/others-out', cookies: jar.cookies }))
    t.equal(kept.statusCode, 200)
    t.same(await read(app, jar.cookies.session), { isNew: false, data: { current_user: { id: 'ada' }, theme: 'dark' } }, 'the current session lives on, its data whole')
    for (const cookie of [phone, laptop]) t.same(await read(app, cookie), ENDED, 'every other is ended')
    jar.take(await app.inject({ url: '/set/more/1', cookies: jar.cookies }))
    t.same(await read(app, jar.cookies.session), { isNew: false, data: { current_user: { id: 'ada' }, theme: 'dark', more: '1' } }, 'and keeps working')
    await app.revokeSessions('ada', { sessionName: 'session' })
    t.same(await read(app, jar.cookies.session), ENDED, '{ sessionName } works, and a plain revoke ends the kept one too')
  })
}

t.test('revokeSessions\' arguments', async (t) => {
  const app = await server(t, { store: new MemoryStore() })
  await t.rejects(app.revokeSessions('ada', 'other'), { message: /no session named "other"/ }, 'a string second argument is still the sessionName')
  await t.rejects(app.revokeSessions('ada', { except: {} as never }), { name: 'TypeError', message: /takes a session \(request.session\)/ })
  const cookie = await login(app)
  const someoneElse = await app.decodeSession(await login(app, 'bob'))
  await app.revokeSessions('ada', { except: someoneElse })
  t.same(await read(app, cookie), ENDED, 'a session of another user as except keeps nothing of this one')
  t.same(await read(app, await app.encodeSession(someoneElse)), { isNew: false, data: { current_user: { id: 'bob' } } })
})

t.test('cookie mode without a revocationStore: revokeSessions rejects, naming the option', async (t) => {
  const app = await server(t, {})
  await t.rejects(app.revokeSessions('ada'), { name: 'TypeError', message: /revocationStore/ })
  const token = await login(app)
  t.same(await read(app, token), { isNew: false, data: { current_user: { id: 'ada' } } }, 'and nothing is added to the cookie')
  t.same(JSON.parse(new TextDecoder().decode(await new Fernet(KEY).decrypt(token))), { current_user: { id: 'ada' } })
})

t.test('cookie mode with a revocationStore: the same calls end cookie sessions', async (t) => {
  const revocationStore = new MemoryStore()
  const app = await server(t, { revocationStore })
  const other = await server(t, { revocationStore })
  const phone = await login(app)
  const laptop = await login(other)
  const bob = await login(app, 'bob')
  t.equal(revocationStore.size, 0, 'a login writes nothing to the store')
  t.same(JSON.parse(new TextDecoder().decode(await new Fernet(KEY).decrypt(phone))), { current_user: { id: 'ada' }, _rev: '' }, 'the cookie carries its generation: none yet')
  t.same(await read(other, phone), { isNew: false, data: { current_user: { id: 'ada' } } }, 'which the app never sees')
  await app.revokeSessions('ada')
  t.same(await read(other, phone), ENDED, 'ended on the other server at its next request')
  t.same(await read(app, laptop), ENDED)
  t.same(await read(app, bob), { isNew: false, data: { current_user: { id: 'bob' } } })
  t.equal(revocationStore.size, 1, 'one record: the user\'s revocation record')
  const after = await login(other)
  t.same(await read(app, after), { isNew: false, data: { current_user: { id: 'ada' } } }, 'a login after the call stands')

  const jar = new Jar()
  jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
  const before = jar.cookies.session
  const kept = jar.take(await app.inject({ method: 'POST', url: '/others-out', cookies: jar.cookies }))
  t.not(setCookie(kept)?.value, undefined, 'except: the current cookie is re-issued under the new generation')
  t.not(jar.cookies.session, before)
  t.same(await read(other, jar.cookies.session), { isNew: false, data: { current_user: { id: 'ada' } } }, 'and lives on')
  t.same(await read(other, after), ENDED, 'the others are ended')
  t.same(await read(other, before), ENDED, 'the kept session\'s old cookie too')

  const anonymous = setCookie(await app.inject('/set/a/1'))?.value as string
  t.same(JSON.parse(new TextDecoder().decode(await new Fernet(KEY).decrypt(anonymous))), { a: '1' }, 'a session without a user carries no generation')
})

t.test('options: revocationStore is checked, and is for cookie mode', async (t) => {
  const { resolveOptions } = await import('../lib/options.js')
  await t.rejects(resolveOptions({ key: KEY, store: new MemoryStore(), revocationStore: new MemoryStore() }), { message: /revocationStore is for cookie mode/ })
  await t.rejects(resolveOptions({ key: KEY, revocationStore: {} as never }), { message: /revocationStore must be a MemoryStore/ })
  await t.rejects(resolveOptions({ key: KEY, revocationStore: new MemoryStore(), encryptStore: false }), { message: /encryptStore goes with store/ })
  const resolved = await resolveOptions({ key: KEY, revocationStore: new MemoryStore(), storeTimeout: 100, userId: () => 'x' })
  t.equal(resolved.store, undefined, 'cookie mode')
  t.equal(resolved.revocation?.timeout, 100)
})

const python = '/usr/bin/python3'
const pythonMissing = spawnSync(python, ['-c', 'import cryptography'], { encoding: 'utf8' }).status === 0 ? undefined : `${python} with python3-cryptography is needed`

/** Python's own Fernet: a token of `json` made at Unix time `at`, or what a token holds. */
function pythonFernet (op: 'encrypt' | 'decrypt' | 'add-cart', value: string, at = 0): string {
  const f = 'import sys, json; from cryptography.fernet import Fernet; f = Fernet(sys.argv[1].encode()); '
  const script = f + {
    encrypt: 'print(f.encrypt_at_time(sys.argv[2].encode(), int(sys.argv[3])).decode())',
    decrypt: 'print(f.decrypt(sys.argv[2].encode()).decode())',
    // As a Flask view does: session["cart"] = 1, and the cookie is written again.
    'add-cart': 'data = json.loads(f.decrypt(sys.argv[2].encode())); data["cart"] = 1; print(f.encrypt_at_time(json.dumps(data).encode(), int(sys.argv[3])).decode())'
  }[op]
  const result = spawnSync(python, ['-c', script, KEY, value, String(at)], { encoding: 'utf8' })
  if (result.status !== 0) throw new Error(result.stderr)
  return result.stdout.trim()
}

t.test('a session a Python app made (no generation): stands until its user is revoked, then only if made after', { skip: process.env.REQUIRE_PYTHON_INTEROP === '1' ? undefined : pythonMissing }, async (t) => {
  const revocationStore = new MemoryStore()
  const app = await server(t, { revocationStore })
  const now = Math.floor(Date.now() / 1000)
  const madeBefore = pythonFernet('encrypt', '{"current_user": {"id": "ada"}}', now - 5)
  t.same(await read(app, madeBefore), { isNew: false, data: { current_user: { id: 'ada' } } }, 'no record for the user: it stands')
  const ours = await login(app)
  t.same(JSON.parse(pythonFernet('decrypt', ours)), { current_user: { id: 'ada' }, _rev: '' }, 'Python sees our generation as the key _rev')
  await app.revokeSessions('ada')
  t.same(await read(app, madeBefore), ENDED, 'made before the revoke: ended')
  const madeAfter = pythonFernet('encrypt', '{"current_user": {"id": "ada"}}', now + 2)
  t.same(await read(app, madeAfter), { isNew: false, data: { current_user: { id: 'ada' } } }, 'made after it: stands')
  const rewritten = pythonFernet('add-cart', ours, now + 2)
  t.match(JSON.parse(pythonFernet('decrypt', rewritten)), { _rev: '', cart: 1 })
  t.same(await read(app, rewritten), ENDED, 'a session of ours that Python rewrote keeps its generation, and is ended however new its token')
})

/** A MemoryStore that lets a test act when revocation records are read or written. */
class HookedStore extends MemoryStore {
  /** Called before each read of a revocation record (but the hook's own), with how many reads since it was set. */
  #hook: ((reads: number) => Promise<void>) | undefined
  set onRecordRead (hook: ((reads: number) => Promise<void>) | undefined) {
    this.#hook = hook
    this.#reads = 0
  }
  failRecordWrite = 0
  lastSession: string | undefined
  #reads = 0

  override async get (id: string): Promise<Awaited<ReturnType<MemoryStore['get']>>> {
    const hook = this.#hook
    if (id.startsWith('rev.') && hook !== undefined) {
      // The hook's own reads (a revoke reads the record too) do not call it again.
      this.#hook = undefined
      try {
        await hook(++this.#reads)
      } finally {
        this.#hook ??= hook
      }
    }
    return await super.get(id)
  }

  override async put (id: string, data: string, expected: number | null, ttl: number, user?: string): ReturnType<MemoryStore['put']> {
    if (id.startsWith('rev.') && this.failRecordWrite > 0) {
      this.failRecordWrite--
      // As if the record expired between the read and this write.
      await super.destroy(id)
      return { ok: false, current: undefined }
    }
    if (!id.startsWith('rev.')) this.lastSession = id
    return await super.put(id, data, expected, ttl, user)
  }
}

for (const mode of ['store', 'cookie'] as const) {
  t.test(`${mode} mode: a revoke that lands while a login is being written is adopted by it; a login that never settles is refused`, async (t) => {
    const store = new HookedStore()
    const options = mode === 'store' ? { store } : { revocationStore: store }
    const app = await server(t, options)
    const other = await server(t, options)
    const before = await login(app)
    // The login reads the generation (read 1), writes, reads it again (read 2): a revoke on
    // another server lands between.
    store.onRecordRead = async (reads) => { if (reads === 2) await other.revokeSessions('ada') }
    const racing = await login(app)
    store.onRecordRead = undefined
    t.same(await read(app, racing), { isNew: false, data: { current_user: { id: 'ada' } } }, 'the login took the new generation: it stands')
    t.same(await read(app, before), ENDED, 'what came before the revoke is ended')
    // Encoded sessions too.
    store.onRecordRead = async (reads) => { if (reads === 2) await other.revokeSessions('ada') }
    const encoded = await app.encodeSession({ current_user: { id: 'ada' } })
    store.onRecordRead = undefined
    t.same(await read(app, encoded), { isNew: false, data: { current_user: { id: 'ada' } } })
    // A revoke after every read: the login gives up with a 503 rather than loop.
    store.onRecordRead = async () => { await other.revokeSessions('ada') }
    t.equal((await app.inject('/login/ada')).statusCode, 503, 'revoked at every read: a 503, not a loop')
    store.onRecordRead = undefined
    // A record gone between a revoke's read and its write is written as new.
    const last = await login(app)
    store.failRecordWrite = 1
    await app.revokeSessions('ada')
    t.same(await read(app, last), ENDED)
  })
}

t.test('a revocation record that is not ours to read refuses every session of its user', async (t) => {
  const store = new MemoryStore()
  const names: string[] = []
  const put = store.put.bind(store)
  store.put = async (id, ...rest) => {
    if (id.startsWith('rev.')) names.push(id)
    return await put(id, ...rest)
  }
  const app = await server(t, { store, encryptStore: false })
  await app.revokeSessions('ada')
  const name = names[0] as string
  const cookie = await login(app)
  await store.put(name, 'garbage', (await store.get(name))?.version as number, 60_000)
  t.same(await read(app, cookie), ENDED, 'refused')
  const after = await login(app)
  t.same(await read(app, after), { isNew: false, data: { current_user: { id: 'ada' } } }, 'a login from then on stands')
  await app.revokeSessions('ada')
  t.same(await read(app, after), ENDED, 'and the next revoke writes a proper record')
  t.match(JSON.parse((await store.get(name))?.data as string), { g: String, t: Number }, 'a generation and a time')
})

t.test('a login whose session is ended while it adopts a revoke: no cookie for it', async (t) => {
  const store = new HookedStore()
  const app = await server(t, { store })
  const other = await server(t, { store })
  // The login's second read of the generation: a revoke lands, and the session just written is
  // deleted (as a logout on another server would).
  store.onRecordRead = async (reads) => {
    if (reads !== 2) return
    await other.revokeSessions('ada')
    await store.destroy(store.lastSession as string)
  }
  const response = await app.inject('/login/ada')
  t.equal(response.statusCode, 200)
  t.equal(setCookie(response), undefined, 'login(): no cookie for a session that is gone')
  // A user set on an existing session, without login(): a new authentication all the same.
  store.onRecordRead = undefined
  const jar = new Jar()
  jar.take(await app.inject({ url: '/set/a/1', cookies: jar.cookies }))
  store.onRecordRead = async (reads) => {
    if (reads !== 2) return
    await other.revokeSessions('ada')
    await store.destroy(store.lastSession as string)
  }
  const become = await app.inject({ url: '/become/ada', cookies: jar.cookies })
  t.equal(become.statusCode, 200)
  t.equal(setCookie(become), undefined, 'a user set on a session: none either')
})

t.test('key rotation: servers on the old key list and on the new one see each other\'s revocations', async (t) => {
  const NEW_KEY = Fernet.generateKey()
  const store = new MemoryStore()
  const before = await server(t, { store, key: KEY })
  const after = await server(t, { store, key: [NEW_KEY, KEY] })
  const made = await login(after)
  await before.revokeSessions('ada')
  t.same(await read(after, made), ENDED, 'a revoke on a server with only the old key ends sessions made under the new list')
  const cookie = await login(before)
  t.equal((await read(before, cookie) as { isNew: boolean }).isNew, false)
  await after.revokeSessions('ada')
  t.same(await read(before, cookie), ENDED, 'and the other way round: the new list writes the record under both keys\' names')
  // The old-key server revokes again: its record is now the newest of the two names.
  await before.revokeSessions('ada')
  const latest = await login(after)
  t.same(await read(after, latest), { isNew: false, data: { current_user: { id: 'ada' } } }, 'a login takes the newest record of the two')
  t.same(await read(before, await login(before)), { isNew: false, data: { current_user: { id: 'ada' } } })
})

t.test('cookie mode with a revocationStore: a remembered token that expired is refused before any store read', async (t) => {
  const revocationStore = new MemoryStore()
  const app = await server(t, { revocationStore, ttl: 60 })
  const cookie = await login(app)
  t.same(await read(app, cookie), { isNew: false, data: { current_user: { id: 'ada' } } }, 'remembered once read')
  const clock = FakeTimers.install({ now: Date.now() + 120_000, toFake: ['Date'] })
  t.teardown(() => { clock.uninstall() })
  const reads: string[] = []
  const get = revocationStore.get.bind(revocationStore)
  revocationStore.get = async (id) => { reads.push(id); return await get(id) }
  t.same(await read(app, cookie), ENDED, 'expired')
  t.same(reads, [], 'without a store read')
})

for (const mode of ['store', 'cookie'] as const) {
  const options = (): Partial<EncryptedSessionOptions> => mode === 'store' ? { store: new MemoryStore(), ttl: 3600, maxTtl: 3600 } : { revocationStore: new MemoryStore(), ttl: 3600, maxTtl: 3600 }

  t.test(`${mode} mode: a login after a revoke stands after the revoke's record expired (2 maxTtl later)`, async (t) => {
    const clock = FakeTimers.install({ now: Date.now(), toFake: ['Date', 'performance'] })
    t.teardown(() => { clock.uninstall() })
    const app = await server(t, options())
    const before = await login(app)
    await app.revokeSessions('ada')
    const jar = new Jar()
    jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
    // Kept alive by a write every half hour, for three hours: the record lives two.
    for (let step = 0; step < 6; step++) {
      clock.tick(1800_000)
      jar.take(await app.inject({ url: `/set/step/${step}`, cookies: jar.cookies }))
      t.same((await read(app, jar.cookies.session) as { data: Record<string, unknown> }).data.current_user, { id: 'ada' }, `still logged in after ${(step + 1) / 2} h`)
    }
    t.same(await read(app, before), ENDED, 'what the revoke ended stays ended')
  })

  t.test(`${mode} mode: "log out my other devices" clicked twice at once keeps the current session`, async (t) => {
    const app = await server(t, options())
    for (let round = 0; round < 10; round++) {
      const jar = new Jar()
      jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
      const other = await login(app)
      const replies = await Promise.all([1, 2].map(async () => await app.inject({ method: 'POST', url: '/others-out', cookies: jar.cookies })))
      for (const reply of replies) t.equal(reply.statusCode, 200)
      const kept = replies.map((reply) => setCookie(reply)?.value ?? jar.cookies.session)
      for (const cookie of kept) t.same((await read(app, cookie) as { data: Record<string, unknown> }).data.current_user, { id: 'ada' }, `round ${round}: each reply's cookie is still logged in`)
      t.same(await read(app, other), ENDED, `round ${round}: the other device is out`)
    }
  })

  t.test(`${mode} mode: except given a session ended in the same request keeps nothing, and is no outage`, async (t) => {
    const app = await server(t, options())
    const other = await login(app)
    const current = await login(app)
    const reply = await app.inject({ method: 'POST', url: '/logout-and-others-out', cookies: { session: current } })
    t.equal(reply.statusCode, 200, 'not a 503')
    t.same(await read(app, other), ENDED)
    t.same(await read(app, current), ENDED)
  })
}

t.test('a revocation record is named by an HMAC of the user id, also with encryptStore: false', async (t) => {
  const store = new CallbackStore()
  const app = await server(t, { store: store as unknown as Store, encryptStore: false })
  await login(app, encodeURIComponent('/../../app/config'))
  await app.revokeSessions('/../../app/config')
  const names = [...store.records.keys()].filter((id) => id.startsWith('rev.'))
  t.equal(names.length, 1, 'one record')
  t.match(names[0], /^rev\.[A-Za-z0-9_-]{43}$/, 'its name holds no part of the id')
})

t.test('store mode: a revoke that lands while except is being rewritten: the kept session takes the newer generation', async (t) => {
  const store = new MemoryStore()
  const app = await server(t, { store })
  const other = await login(app)
  const jar = new Jar()
  jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
  let armed = false
  const put = store.put.bind(store)
  store.put = async (id, ...rest) => {
    const result = await put(id, ...rest)
    // The kept session's record just written under this revoke's generation: another revoke now.
    if (armed && !id.startsWith('rev.')) {
      armed = false
      await app.revokeSessions('ada')
    }
    return result
  }
  armed = true
  const kept = jar.take(await app.inject({ method: 'POST', url: '/others-out', cookies: jar.cookies }))
  t.equal(kept.statusCode, 200)
  t.equal(armed, false, 'the second revoke ran in between')
  t.same((await read(app, jar.cookies.session) as { data: Record<string, unknown> }).data.current_user, { id: 'ada' }, 'the kept session lives on under the newer generation')
  t.same(await read(app, other), ENDED)
})
