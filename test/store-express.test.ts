// The express-session stores people use, unchanged, as the `store` option: the file store,
// SQLite (better-sqlite3-session-store), memorystore, and connect-redis on both Redis clients
// (connect-redis 9 speaks node-redis only; ioredis users have connect-redis 7). Each passes the
// behavioural suite, and each expires a record when its session ends rather than a day later.
import t, { type Test } from 'tap'
import { EventEmitter } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Fernet } from '../index.js'
import { ExpressStoreAdapter } from '../lib/stores/express.js'
import type { ExpressStoreLike } from '../lib/stores/store.js'
import { buildApp } from './helpers/app.js'
import { Jar, sessionBehaviours } from './helpers/behaviours.js'
import { betterSqlite3 } from './helpers/native.js'
import { connectRedis } from './helpers/redis-clients.js'
import { serversMissing, startRedis } from './helpers/servers.js'

const require = createRequire(import.meta.url)
// Each store extends the Store of the session library it is given; express-session's is an
// EventEmitter with helpers the plugin never calls, so an EventEmitter stands in for it.
const session = { Store: EventEmitter }
type StoreClass = new (options: object) => ExpressStoreLike
const FileStore = (require('session-file-store') as (s: typeof session) => StoreClass)(session)
const SqliteStore = (require('better-sqlite3-session-store') as (s: typeof session) => StoreClass)(session)
const MemoryStoreOfMemorystore = (require('memorystore') as (s: typeof session) => StoreClass & { prototype: { stopInterval: () => void } })(session)
const skipRedis = serversMissing('redis')
const sqlite = betterSqlite3()

async function tempDir (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'express-store-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

/** Each store as its README sets it up, with what a test must not leave running turned off. */
const stores: Record<string, (t: Test) => Promise<ExpressStoreLike>> = {
  async 'session-file-store' (t) {
    // retries: 0, as the README says: a missing file is a new session, not five retries; the
    // store writes atomically, so a read never sees half a file anyway.
    return new FileStore({ path: await tempDir(t), retries: 0, reapInterval: -1, logFn: () => {} })
  },
  async 'better-sqlite3-session-store' (t) {
    const db = new sqlite.Database(join(await tempDir(t), 'sessions.db'), sqlite.options)
    t.teardown(() => { db.close() })
    // Its cleanup timer starts whatever `expired.clear` says and has no stop: catch it to stop it.
    const setIntervalOfNode = globalThis.setInterval
    let timer: NodeJS.Timeout | undefined
    globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => (timer = setIntervalOfNode(...args))) as typeof setInterval
    try {
      return new SqliteStore({ client: db, expired: { intervalMs: 60_000 } })
    } finally {
      globalThis.setInterval = setIntervalOfNode
      t.teardown(() => { clearInterval(timer) })
    }
  },
  async memorystore (t) {
    const store = new MemoryStoreOfMemorystore({ checkPeriod: 60_000 })
    t.teardown(() => { (store as unknown as { stopInterval: () => void }).stopInterval() })
    return store
  }
}

/** Two servers on one store: a user logged in on both, revoked on one, is out on both; another user stays. */
async function revocationHolds (t: Test, store: ExpressStoreLike): Promise<void> {
  const key = Fernet.generateKey()
  const server = async (): Promise<import('fastify').FastifyInstance> => {
    const { app } = await buildApp({ key, store: store as never }, (app) => {
      app.get('/login/:id', async (request) => { request.session.login({ id: (request.params as { id: string }).id }); return {} })
      app.get('/read', async (request) => ({ isNew: request.session.isNew, data: request.session.data() }))
    })
    t.teardown(async () => { await app.close() })
    return app
  }
  const [a, b] = [await server(), await server()]
  const [phone, laptop, other] = [new Jar(), new Jar(), new Jar()]
  phone.take(await a.inject({ url: '/login/ada', cookies: phone.cookies }))
  laptop.take(await b.inject({ url: '/login/ada', cookies: laptop.cookies }))
  other.take(await a.inject({ url: '/login/bob', cookies: other.cookies }))
  await b.revokeSessions('ada')
  t.same((await a.inject({ url: '/read', cookies: phone.cookies })).json(), { isNew: true, data: {} }, 'revoked on B, out on A')
  t.same((await b.inject({ url: '/read', cookies: laptop.cookies })).json(), { isNew: true, data: {} })
  t.same((await a.inject({ url: '/read', cookies: other.cookies })).json().data, { current_user: { id: 'bob' } }, 'another user stays')
}

for (const [name, make] of Object.entries(stores)) {
  t.test(`${name}: the behavioural suite, and revocation`, { skip: name === 'better-sqlite3-session-store' ? sqlite.skip : false }, async (t) => {
    await sessionBehaviours(t, { store: await make(t) as never })
    await t.test('revocation seen by another server', async (t) => { await revocationHolds(t, await make(t)) })
  })
}

t.test('16 concurrent writes to one session in one process: none lost, none timed out', async (t) => {
  for (const [name, make] of Object.entries(stores)) {
    if (name === 'better-sqlite3-session-store' && sqlite.skip !== false) continue
    const { app } = await buildApp({ key: Fernet.generateKey(), store: await make(t) as never, storeTimeout: 2000 }, (app) => {
      app.get('/set/:key', async (request) => { request.session.set((request.params as { key: string }).key, 1); return {} })
      app.get('/read', async (request) => request.session.data())
    })
    t.teardown(async () => { await app.close() })
    const jar = new Jar()
    jar.take(await app.inject({ url: '/set/start', cookies: jar.cookies }))
    const answers = await Promise.all(Array.from({ length: 16 }, async (_, i) => await app.inject({ url: `/set/k${i}`, cookies: jar.cookies })))
    t.same(answers.map((answer) => answer.statusCode), Array(16).fill(200), `${name}: every write answered 200`)
    t.equal(Object.keys((await app.inject({ url: '/read', cookies: jar.cookies })).json()).length, 17, `${name}: every key kept`)
  }
})

/** The store's own answer for an id, in whatever style it answers. */
async function raw (store: ExpressStoreLike, id: string): Promise<unknown> {
  return await new Promise((resolve) => {
    store.get(id, (error, value) => { resolve(error == null ? value : (error as { code?: string }).code) })
  })
}

t.test('every store expires a record when its session ends, not a day later', async (t) => {
  const made = await Promise.all(Object.entries(stores)
    .filter(([name]) => name !== 'better-sqlite3-session-store' || sqlite.skip === false)
    .map(async ([name, make]) => ({ name, store: await make(t) })))
  const ttl = 1500
  for (const { name, store } of made) {
    const adapter = new ExpressStoreAdapter(store, { plain: false, timeout: 2000, endedFor: ttl })
    t.same(await adapter.put('id-1', 'token', null, ttl), { ok: true, version: 1 }, `${name}: written`)
    t.match(await raw(store, 'id-1'), { cookie: { maxAge: ttl, originalMaxAge: ttl, expires: String } }, `${name}: the record carries the session's lifetime`)
  }
  // SQLite compares whole seconds: wait past the next one.
  await new Promise((resolve) => setTimeout(resolve, ttl + 1100))
  for (const { name, store } of made) {
    t.notMatch(await raw(store, 'id-1'), { version: Number }, `${name}: the store itself no longer holds it`)
  }
})

t.test('ENOENT from a store\'s get is no session, as express-session reads it; other errors are errors', async (t) => {
  let error: Error & { code?: string } = Object.assign(new Error('ENOENT: no such file or directory'), { code: 'ENOENT' })
  const store: ExpressStoreLike = {
    get: (_sid, callback) => { setImmediate(() => { callback(error) }) },
    set: (_sid, _session, callback) => { setImmediate(() => { callback() }) },
    destroy: (_sid, callback) => { setImmediate(() => { callback() }) }
  }
  const adapter = new ExpressStoreAdapter(store, { plain: false, timeout: 1000, endedFor: 1000 })
  t.equal(await adapter.get('missing'), undefined)
  t.same(await adapter.put('missing', 'token', null, 1000), { ok: true, version: 1 }, 'a new session is written')
  error = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' })
  await t.rejects(adapter.get('unreadable'), /EACCES/)
})

t.test('connect-redis on both Redis clients: the behavioural suite, and revocation', { skip: skipRedis }, async (t) => {
  const redis = await startRedis(t)
  await t.test('connect-redis 9 on node-redis', async (t) => {
    const { RedisStore } = await import('connect-redis')
    const store = new RedisStore({ client: await connectRedis(t, 'node-redis', { kind: 'standalone', port: redis.port }), prefix: 'nr:' })
    await sessionBehaviours(t, { store: store as never })
    await t.test('revocation seen by another server', async (t) => { await revocationHolds(t, store as never) })
  })
  await t.test('connect-redis 7 on ioredis', async (t) => {
    const { default: RedisStore } = await import('connect-redis-7') as unknown as { default: new (options: object) => ExpressStoreLike }
    const store = new RedisStore({ client: await connectRedis(t, 'ioredis', { kind: 'standalone', port: redis.port }), prefix: 'io:' })
    await sessionBehaviours(t, { store: store as never })
    await t.test('revocation seen by another server', async (t) => { await revocationHolds(t, store) })
  })
})
