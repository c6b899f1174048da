// Store mode (issue 12) with the in-process stores: what the cookie holds, what the store holds,
// revocation, lost updates, cheap requests, failures, and MemoryStore's bounds. Real Redis and
// PostgreSQL: test/store-redis.test.ts, test/store-pg.test.ts.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import FakeTimers from '@sinonjs/fake-timers'
import Fastify, { type FastifyInstance } from 'fastify'
import encryptedSession, { type EncryptedSessionOptions, Fernet, MemoryStore, type PutResult, type SessionStore, type StoredSession } from '../index.js'
import { buildApp, isCleared, setCookie } from './helpers/app.js'
import { Jar } from './helpers/behaviours.js'
import { CallbackStore, PromiseStore } from './helpers/express-stores.js'
import { spyOnSubtle } from './helpers/subtle-spy.js'

const KEY = Fernet.generateKey()
const OLD_KEY = Fernet.generateKey()
const decoder = new TextDecoder()

/** A store that records its calls, and can be told to fail, hang or lose races. */
class SpyStore implements SessionStore {
  readonly inner = new MemoryStore()
  readonly calls: string[] = []
  fail: Error | undefined
  hang = false
  /** put() answers "changed meanwhile" this many times first, as if another server wrote. */
  conflicts = 0
  conflictWith: (() => Promise<void>) | undefined

  async #gate (name: string): Promise<void> {
    this.calls.push(name)
    if (this.hang) await new Promise(() => {})
    if (this.fail !== undefined) throw this.fail
  }

  async get (id: string): Promise<StoredSession | undefined> { await this.#gate('get'); return await this.inner.get(id) }
  async put (id: string, data: string, expected: number | null, ttl: number, user?: string): Promise<PutResult> {
    await this.#gate('put')
    if (this.conflicts > 0) {
      this.conflicts--
      await this.conflictWith?.()
      const current = await this.inner.get(id)
      if (expected !== null && current !== undefined && current.version === expected) return { ok: false, current: { ...current, version: current.version + 100 } }
      if (expected === null) return { ok: false, current }
    }
    return await this.inner.put(id, data, expected, ttl, user)
  }

  async touch (id: string, ttl: number, user?: string): Promise<boolean> { await this.#gate('touch'); return await this.inner.touch(id, ttl, user) }
  async destroy (id: string, user?: string): Promise<boolean> { await this.#gate('destroy'); return await this.inner.destroy(id, user) }
  async revoke (user: string): Promise<number> { await this.#gate('revoke'); return await this.inner.revoke(user) }
}

function routes (app: FastifyInstance): void {
  app.get('/set/:key/:value', async (request) => {
    const { key, value } = request.params as { key: string, value: string }
    request.session.set(key, value)
    return {}
  })
  app.get('/read', async (request) => ({ isNew: request.session.isNew, data: request.session.data() }))
  app.get('/delete/:key', async (request) => { request.session.delete((request.params as { key: string }).key); return {} })
  app.get('/login/:id', async (request) => { request.session.login({ id: (request.params as { id: string }).id }); return {} })
  app.get('/logout', async (request) => { request.session.logout(); return {} })
  app.get('/regenerate', async (request) => { await request.session.regenerate(); request.session.set('fresh', 'yes'); return {} })
  app.get('/touch', async (request) => { request.session.touch(); return {} })
  app.get('/static', { config: { session: false } }, async () => ({ ok: true }))
  app.post('/revoke/:id', async (request) => ({ ended: await app.revokeSessions((request.params as { id: string }).id) }))
}

async function storeApp (t: Test, options: Partial<EncryptedSessionOptions> & { store: EncryptedSessionOptions['store'] }): Promise<Awaited<ReturnType<typeof buildApp>>> {
  const built = await buildApp({ key: KEY, ...options }, routes)
  t.teardown(async () => { await built.app.close() })
  return built
}

const idOf = async (token: string, key = KEY): Promise<string> => decoder.decode(await new Fernet(key).decrypt(token))
/** A stored data token as the plugin writes it: the session's id, a colon, its JSON. */
const sealFor = async (id: string, json: string, key = KEY): Promise<string> => await new Fernet(key).encrypt(`${id}:${json}`)
/** What a stored data token holds, checked to name its own session. */
async function openStored (t: Test, id: string, data: string | undefined, key = KEY): Promise<unknown> {
  const text = decoder.decode(await new Fernet(key).decrypt(data as string))
  t.equal(text.slice(0, id.length + 1), `${id}:`, 'the stored token names its session')
  return JSON.parse(text.slice(id.length + 1))
}

t.test('the cookie holds a token of a random id; the store holds the data, encrypted', async (t) => {
  const store = new SpyStore()
  const { app } = await storeApp(t, { store })
  const jar = new Jar()
  jar.take(await app.inject({ url: '/set/secret/s3cr3t-value', cookies: jar.cookies }))
  const id = await idOf(jar.cookies.session as string)
  t.match(id, /^[A-Za-z0-9_-]{22}$/, 'the cookie decrypts to a 22-character id: 128 random bits')
  const stored = await store.inner.get(id)
  t.match(stored?.data, /^gAAAAA/, 'the stored value is a Fernet token')
  t.notMatch(stored?.data, /s3cr3t/, 'a dump of the store reveals nothing')
  t.same(await openStored(t, id, stored?.data), { secret: 's3cr3t-value' }, 'the token holds the session\'s JSON under the session key')

  const other = new Jar()
  other.take(await app.inject({ url: '/set/a/1', cookies: other.cookies }))
  t.not(await idOf(other.cookies.session as string), id, 'every session its own id')

  const plainStore = new MemoryStore()
  const plain = await storeApp(t, { store: plainStore, encryptStore: false })
  const plainJar = new Jar()
  plainJar.take(await plain.app.inject({ url: '/set/visible/yes', cookies: plainJar.cookies }))
  t.equal((await plainStore.get(await idOf(plainJar.cookies.session as string)))?.data, '{"visible":"yes"}', 'encryptStore: false stores the JSON itself, for other programs')
})

t.test('a forged, tampered or expired cookie costs the store nothing', async (t) => {
  const store = new SpyStore()
  // cacheSize 0: every cookie token is checked afresh, none remembered.
  const { app } = await storeApp(t, { store, ttl: 60, cacheSize: 0 })
  const jar = new Jar()
  jar.take(await app.inject({ url: '/set/a/1', cookies: jar.cookies }))
  const token = jar.cookies.session as string
  store.calls.length = 0
  const forged = [
    token.replace(/^(.{40})(.)/, (_, head: string, c: string) => head + (c === 'A' ? 'B' : 'A')),
    await new Fernet(Fernet.generateKey()).encrypt('AAAAAAAAAAAAAAAAAAAAAA'),
    await new Fernet(KEY).encryptAtTime('AAAAAAAAAAAAAAAAAAAAAA', Math.floor(Date.now() / 1000) - 3600),
    await new Fernet(KEY).encrypt('not an id'),
    'garbage'
  ]
  for (const cookie of forged) {
    const response = await app.inject({ url: '/read', cookies: { session: cookie } })
    t.same(response.json(), { isNew: true, data: {} })
    t.ok(isCleared(setCookie(response)))
  }
  t.same(store.calls, [], 'not one store call for any of them')
})

t.test('revocation: logout and destroy delete the record, so a copied cookie dies with it', async (t) => {
  const store = new SpyStore()
  const { app } = await storeApp(t, { store })
  const jar = new Jar()
  jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
  const copy = jar.cookies.session as string
  t.same((await app.inject({ url: '/read', cookies: { session: copy } })).json().data, { current_user: { id: 'ada' } })
  jar.take(await app.inject({ url: '/logout', cookies: jar.cookies }))
  const stolen = await app.inject({ url: '/read', cookies: { session: copy } })
  t.same(stolen.json(), { isNew: true, data: {} }, 'the copy made before logout opens nothing')
  t.ok(isCleared(setCookie(stolen)), 'and is cleared')
})

t.test('login and regenerate: a new id, and the old record deleted (no fixation)', async (t) => {
  const store = new SpyStore()
  const { app } = await storeApp(t, { store })
  const jar = new Jar()
  jar.take(await app.inject({ url: '/set/cart/1', cookies: jar.cookies }))
  const anonymous = jar.cookies.session as string
  const anonymousId = await idOf(anonymous)
  jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
  const loggedIn = await idOf(jar.cookies.session as string)
  t.not(loggedIn, anonymousId, 'a new id at login')
  t.equal(await store.inner.get(anonymousId), undefined, 'the anonymous record is gone')
  t.same((await app.inject({ url: '/read', cookies: { session: anonymous } })).json().isNew, true, 'a fixated pre-login cookie opens nothing')
  jar.take(await app.inject({ url: '/regenerate', cookies: jar.cookies }))
  t.not(await idOf(jar.cookies.session as string), loggedIn, 'regenerate: a new id too')
  t.equal(await store.inner.get(loggedIn), undefined)
  t.same((await app.inject({ url: '/read', cookies: jar.cookies })).json().data, { fresh: 'yes' })
})

t.test('revokeSessions ends every session of a user, and only theirs', async (t) => {
  const store = new SpyStore()
  const { app } = await storeApp(t, { store })
  const phone = new Jar()
  const laptop = new Jar()
  const someoneElse = new Jar()
  phone.take(await app.inject({ url: '/login/ada', cookies: phone.cookies }))
  laptop.take(await app.inject({ url: '/login/ada', cookies: laptop.cookies }))
  someoneElse.take(await app.inject({ url: '/login/bob', cookies: someoneElse.cookies }))
  laptop.take(await app.inject({ url: '/set/theme/dark', cookies: laptop.cookies }))
  t.equal((await app.inject({ method: 'POST', url: '/revoke/ada' })).statusCode, 200)
  for (const jar of [phone, laptop]) t.same((await app.inject({ url: '/read', cookies: jar.cookies })).json(), { isNew: true, data: {} }, 'ada is out everywhere')
  t.same((await app.inject({ url: '/read', cookies: someoneElse.cookies })).json().data, { current_user: { id: 'bob' } }, 'bob is not')
  phone.take(await app.inject({ url: '/login/ada', cookies: phone.cookies }))
  t.same((await app.inject({ url: '/read', cookies: phone.cookies })).json().data, { current_user: { id: 'ada' } }, 'a login after the revoke stands')
  await t.rejects(app.revokeSessions({} as never), { name: 'TypeError', message: /takes the user's id/ })

  // The userId option: users identified by another field.
  const custom = await storeApp(t, { store: new MemoryStore(), userId: (user) => (user as { id: string }).id.toUpperCase() })
  const jar = new Jar()
  jar.take(await custom.app.inject({ url: '/login/ada', cookies: jar.cookies }))
  await custom.app.revokeSessions('ada')
  t.equal((await custom.app.inject({ url: '/read', cookies: jar.cookies })).json().isNew, false, 'another id: not ended')
  await custom.app.revokeSessions('ADA')
  t.equal((await custom.app.inject({ url: '/read', cookies: jar.cookies })).json().isNew, true, 'the id userId gives: ended')

  // Users as plain ids, and users revokeSessions cannot name (no id): logged in, never listed.
  const plain = await buildApp({ key: KEY, store: new MemoryStore(), encryptStore: false }, (app) => {
    app.get('/read', async (request) => request.session.data())
    app.get('/as/:kind', async (request) => {
      const kind = (request.params as { kind: string }).kind
      request.session.login(kind === 'number' ? 7 : kind === 'string' ? 'seven' : { name: 'no id' })
      return {}
    })
  })
  const kinds: Record<string, Jar> = {}
  for (const kind of ['number', 'string', 'object']) {
    kinds[kind] = new Jar()
    kinds[kind].take(await plain.app.inject(`/as/${kind}`))
  }
  const read = async (kind: string): Promise<unknown> => (await plain.app.inject({ url: '/read', cookies: kinds[kind]?.cookies })).json()
  await plain.app.revokeSessions(7)
  t.same(await read('number'), {}, 'a number user is its own id')
  t.same(await read('string'), { current_user: 'seven' })
  await plain.app.revokeSessions('seven')
  t.same(await read('string'), {}, 'a string user too')
  t.same(await read('object'), { current_user: { name: 'no id' } }, 'a user without an id cannot be named, nor ended')

  const cookieOnly = await buildApp({ key: KEY })
  await t.rejects(cookieOnly.app.revokeSessions(1), { name: 'TypeError', message: /revoked only with a revocationStore/ })
})

t.test('the user index holds no user ids in the clear', async (t) => {
  const users: string[] = []
  const store = new SpyStore()
  const original = store.inner.put.bind(store.inner)
  store.inner.put = async (id, data, expected, ttl, user) => { if (user !== undefined) users.push(user); return await original(id, data, expected, ttl, user) }
  const { app } = await storeApp(t, { store })
  await app.inject('/login/ada-lovelace')
  t.equal(users.length, 1)
  t.notMatch(users[0], /ada/, `indexed as ${users[0] as string}, an HMAC`)
})

t.test('key rotation: stored data under an old key is read, and rewritten under the new one', async (t) => {
  const store = new MemoryStore()
  const before = await storeApp(t, { store, key: OLD_KEY })
  const jar = new Jar()
  jar.take(await before.app.inject({ url: '/set/a/1', cookies: jar.cookies }))
  const id = await idOf(jar.cookies.session as string, OLD_KEY)
  const after = await storeApp(t, { store, key: [KEY, OLD_KEY] })
  const read = jar.take(await after.app.inject({ url: '/read', cookies: jar.cookies }))
  t.same(read.json(), { isNew: false, data: { a: '1' } })
  t.equal(await idOf(jar.cookies.session as string), id, 'the cookie re-issued under the new key, same id')
  t.same(await openStored(t, id, (await store.get(id))?.data), { a: '1' }, 'the record re-encrypted under the new key')
  const only = await storeApp(t, { store, key: KEY })
  t.same((await only.app.inject({ url: '/read', cookies: jar.cookies })).json().data, { a: '1' })

  // A record that cannot be read (its key removed, or written by something else): a fresh session.
  const damaged = new MemoryStore()
  const reader = await storeApp(t, { store: damaged })
  const damages: Array<(id: string) => Promise<string>> = [
    async () => 'garbage',
    async (id) => await sealFor(id, '{"a":1}', OLD_KEY),
    async () => await new Fernet(KEY).encrypt(new Uint8Array([0xff, 0xfe])),
    async (id) => await sealFor(id, '[1]'),
    async () => await new Fernet(KEY).encrypt('[1]'),
    async () => await new Fernet(KEY).encrypt('{"a":1}'),
    async () => await sealFor('AAAAAAAAAAAAAAAAAAAAAA', '{"a":1}')
  ]
  for (const damage of damages) {
    const damagedJar = new Jar()
    damagedJar.take(await reader.app.inject({ url: '/set/a/1', cookies: damagedJar.cookies }))
    const damagedId = await idOf(damagedJar.cookies.session as string)
    const data = await damage(damagedId)
    await damaged.put(damagedId, data, 1, 60_000)
    const opened = await reader.app.inject({ url: '/read', cookies: damagedJar.cookies })
    t.same(opened.json(), { isNew: true, data: {} }, `stored ${data.slice(0, 12)}...: a fresh session`)
    t.ok(isCleared(setCookie(opened)))
  }
})

t.test('cheap when nothing happens: no write without a change, touch for renewal, nothing for opted-out routes', async (t) => {
  const clock = FakeTimers.install({ now: Date.now(), toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
  const store = new SpyStore()
  const { app } = await storeApp(t, { store })
  const jar = new Jar()
  jar.take(await app.inject({ url: '/set/a/1', cookies: jar.cookies }))
  store.calls.length = 0
  const read = await app.inject({ url: '/read', cookies: jar.cookies })
  t.same(store.calls, ['get'], 'a read: one round-trip, no write')
  t.equal(read.headers['set-cookie'], undefined)
  store.calls.length = 0
  await app.inject({ url: '/set/a/1', cookies: jar.cookies })
  t.same(store.calls, ['get'], 'setting the same value writes nothing')
  store.calls.length = 0
  await app.inject({ url: '/static', cookies: jar.cookies })
  t.same(store.calls, [], 'a route with config.session false: no round-trip at all')
  clock.tick(7 * 3600_000)
  store.calls.length = 0
  const renewed = jar.take(await app.inject({ url: '/read', cookies: jar.cookies }))
  t.same(store.calls, ['get', 'touch'], 'rolling renewal refreshes the expiry without rewriting the data')
  t.ok(setCookie(renewed), 'and re-issues the cookie')
  store.calls.length = 0
  jar.take(await app.inject({ url: '/touch', cookies: jar.cookies }))
  t.same(store.calls, ['get', 'touch'], 'touch() too')
})

t.test('no lost updates: concurrent requests that change different keys both survive', async (t) => {
  const store = new MemoryStore()
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  const { app } = await buildApp({ key: KEY, store }, (app) => {
    app.get('/slow/:key/:value', async (request) => {
      const { key, value } = request.params as { key: string, value: string }
      await gate
      request.session.set(key, value)
      return {}
    })
    routes(app)
  })
  const jar = new Jar()
  jar.take(await app.inject({ url: '/set/start/0', cookies: jar.cookies }))
  // Both requests load the session before either saves.
  const first = app.inject({ url: '/slow/a/1', cookies: jar.cookies })
  const second = app.inject({ url: '/slow/b/2', cookies: jar.cookies })
  const third = app.inject({ url: '/slow/start/3', cookies: jar.cookies })
  await new Promise((resolve) => setTimeout(resolve, 50))
  release()
  await Promise.all([first, second, third])
  t.same((await app.inject({ url: '/read', cookies: jar.cookies })).json().data, { start: '3', a: '1', b: '2' }, 'every change kept')
})

t.test('a write that meets another server\'s write merges key by key', async (t) => {
  const store = new SpyStore()
  const { app, logs } = await storeApp(t, { store })
  const jar = new Jar()
  jar.take(await app.inject({ url: '/set/a/1', cookies: jar.cookies }))
  const id = await idOf(jar.cookies.session as string)
  // Another server writes b and changes a while this request is in flight.
  store.conflicts = 1
  store.conflictWith = async () => {
    const current = await store.inner.get(id) as StoredSession
    await store.inner.put(id, await sealFor(id, '{"a":"other","b":"2"}'), current.version, 60_000)
  }
  await app.inject({ url: '/set/c/3', cookies: jar.cookies })
  t.same((await app.inject({ url: '/read', cookies: jar.cookies })).json().data, { a: 'other', b: '2', c: '3' }, 'its keys and ours')
  store.conflicts = 1
  store.conflictWith = async () => {
    const current = await store.inner.get(id) as StoredSession
    await store.inner.put(id, 'not a token', current.version, 60_000)
  }
  const unreadable = await app.inject({ url: '/set/d/4', cookies: jar.cookies })
  t.equal(unreadable.statusCode, 503, 'a concurrent write this server cannot read (another key): 503, not a merge over nothing')
  t.equal((await store.inner.get(id))?.data, 'not a token', 'the other writer\'s record is left as it is')
  const before = await store.inner.get(id) as StoredSession
  await store.inner.put(id, await sealFor(id, '{"d":"4"}'), before.version, 60_000)

  // A key this request deletes stays deleted in the merge; the other writer's new key stays.
  store.conflicts = 1
  store.conflictWith = async () => {
    const current = await store.inner.get(id) as StoredSession
    await store.inner.put(id, await sealFor(id, '{"d":"4","e":"theirs"}'), current.version, 60_000)
  }
  await app.inject({ url: '/delete/d', cookies: jar.cookies })
  t.same((await app.inject({ url: '/read', cookies: jar.cookies })).json().data, { e: 'theirs' }, 'a deletion survives the merge, and so does the other writer\'s key')
  // This request deletes one key while another deleted the other: together, nothing is left.
  jar.take(await app.inject({ url: '/set/f/6', cookies: jar.cookies }))
  store.conflicts = 1
  store.conflictWith = async () => {
    const current = await store.inner.get(id) as StoredSession
    await store.inner.put(id, await sealFor(id, '{"f":"6"}'), current.version, 60_000)
  }
  const bothGone = await app.inject({ url: '/delete/f', cookies: jar.cookies })
  t.ok(isCleared(setCookie(bothGone)), 'the merged session is empty: its cookie is cleared')
  t.same(await openStored(t, id, (await store.inner.get(id))?.data), {}, 'and the record holds an empty session')
  jar.take(await app.inject({ url: '/set/e/theirs', cookies: jar.cookies }))
  const emptied = await app.inject({ url: '/delete/e', cookies: jar.cookies })
  t.ok(isCleared(setCookie(emptied)), 'the last key deleted, with nobody writing meanwhile: the session ends, its cookie cleared')
  jar.take(emptied)
  jar.take(await app.inject({ url: '/set/a/1', cookies: jar.cookies }))

  store.conflicts = 32
  store.conflictWith = undefined
  const busy = await app.inject({ url: '/set/e/5', cookies: jar.cookies })
  t.equal(busy.statusCode, 503, '32 lost races in a row: 503, never a silent loss')
  t.ok(logs.some((line) => /changed under 32 concurrent writes/.test(String((line.err as { message?: string } | undefined)?.message))), 'logged with why')

  // A new id already taken (128 random bits repeating): another id is drawn.
  store.conflicts = 1
  const created = new Jar()
  created.take(await app.inject({ url: '/set/z/1', cookies: created.cookies }))
  t.same((await app.inject({ url: '/read', cookies: created.cookies })).json().data, { z: '1' })
})

t.test('a session revoked while a request runs is not brought back', async (t) => {
  const store = new MemoryStore()
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  const { app } = await buildApp({ key: KEY, store, rolling: 10 }, (app) => {
    app.get('/slow', async (request) => { await gate; request.session.set('late', 'write'); return {} })
    app.get('/slow-read', async (request) => { await gate; return request.session.data() })
    routes(app)
  })
  const jar = new Jar()
  jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
  const writing = app.inject({ url: '/slow', cookies: jar.cookies })
  const clock = FakeTimers.install({ now: Date.now() + 20_000, toFake: ['Date'] })
  const renewing = app.inject({ url: '/slow-read', cookies: jar.cookies })
  await new Promise((resolve) => setTimeout(resolve, 20))
  await app.revokeSessions('ada')
  release()
  const [written, renewed] = await Promise.all([writing, renewing])
  clock.uninstall()
  t.equal(written.statusCode, 200)
  t.equal(renewed.statusCode, 200)
  // The late write and renewal went to the session's record, under the generation it was
  // loaded under: the next request that brings any of its cookies is refused.
  for (const response of [written, renewed]) {
    const cookie = setCookie(response)
    if (cookie !== undefined) t.same((await app.inject({ url: '/read', cookies: { session: cookie.value } })).json(), { isNew: true, data: {} }, 'a cookie the late request re-issued opens nothing')
  }
  t.same((await app.inject({ url: '/read', cookies: jar.cookies })).json(), { isNew: true, data: {} })
  t.equal(store.size, 1, 'and the record is gone: only the user\'s revocation record is left')
})

t.test('store failures: a bounded wait, then 503 with the reason logged; never a silent logout', async (t) => {
  const store = new SpyStore()
  const { app, logs } = await storeApp(t, { store, storeTimeout: 50 })
  const jar = new Jar()
  jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
  store.hang = true
  const slow = await app.inject({ url: '/read', cookies: jar.cookies })
  t.equal(slow.statusCode, 503, 'a store that does not answer: 503 after storeTimeout')
  t.match(slow.json(), { statusCode: 503, code: 'FST_SESSION_STORE_UNAVAILABLE', message: 'fastify-encrypted-session: the session store is unavailable (get)' })
  t.equal(slow.headers['set-cookie'], undefined, 'the cookie is left alone: no logout')
  t.ok(logs.some((line) => line.level === 50 && /unavailable \(get\): no answer within 50 ms/.test(String((line.err as { message?: string } | undefined)?.message))), 'logged with the reason')
  store.hang = false
  store.fail = new Error('ECONNREFUSED 127.0.0.1:6379')
  store.fail = new Error('getaddrinfo ENOTFOUND redis-primary.internal, password authentication failed for user "sessions_rw"')
  const down = await app.inject({ url: '/read', cookies: jar.cookies })
  t.equal(down.statusCode, 503)
  t.equal(down.json().message, 'fastify-encrypted-session: the session store is unavailable (get)', 'what the driver said (hosts, database users) stays out of the reply')
  t.notMatch(down.body, /redis-primary|sessions_rw/)
  t.ok(logs.some((line) => /\(get\): getaddrinfo ENOTFOUND redis-primary/.test(String((line.err as { message?: string } | undefined)?.message))), 'and goes to the log')
  store.fail = undefined
  t.same((await app.inject({ url: '/read', cookies: jar.cookies })).json().data, { current_user: { id: 'ada' } }, 'back once the store is: still logged in')

  // A write that fails after the route ran: 503 rather than a reply that pretends it was saved.
  let failWrites = true
  const writeStore = new SpyStore()
  const original = writeStore.put.bind(writeStore)
  let puts = 0
  writeStore.put = async (...args) => { puts++; if (failWrites) throw new Error('READONLY'); return await original(...args) }
  const writer = await storeApp(t, { store: writeStore })
  const failed = await writer.app.inject('/set/a/1')
  t.equal(failed.statusCode, 503)
  t.equal(failed.json().message, 'fastify-encrypted-session: the session store is unavailable (put)')
  t.equal(puts, 1, 'tried once: the 503 reply does not try the save again')
  failWrites = false
  const destroyFails = new SpyStore()
  const ender = await storeApp(t, { store: destroyFails })
  const endJar = new Jar()
  endJar.take(await ender.app.inject({ url: '/set/a/1', cookies: endJar.cookies }))
  let destroys = 0
  destroyFails.destroy = async () => { destroys++; throw new Error('down') }
  const notEnded = await ender.app.inject({ url: '/logout', cookies: endJar.cookies })
  t.equal(notEnded.statusCode, 503, 'a logout the store could not record is not reported as done')
  t.equal(notEnded.headers['set-cookie'], undefined)
  t.equal(destroys, 1, 'one attempt to delete, not a second one for the error reply')
})

t.test('express-session stores: callbacks and promises, records in their own shape', async (t) => {
  const store = new CallbackStore()
  const { app } = await storeApp(t, { store })
  const jar = new Jar()
  jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
  const id = await idOf(jar.cookies.session as string)
  const record = JSON.parse(store.records.get(id)?.json as string)
  t.match(record, { cookie: { originalMaxAge: 86_400_000, expires: String }, version: 1, data: /^gAAAAA/ }, 'the shape express-session stores read their expiry from')
  await app.revokeSessions('ada')
  t.same((await app.inject({ url: '/read', cookies: jar.cookies })).json().isNew, true)

  const promises = new PromiseStore()
  const plain = await storeApp(t, { store: promises, encryptStore: false })
  const plainJar = new Jar()
  plainJar.take(await plain.app.inject({ url: '/set/a/1', cookies: plainJar.cookies }))
  const plainId = await idOf(plainJar.cookies.session as string)
  t.match(JSON.parse(promises.records.get(plainId) as string), { data: { a: '1' } }, 'plain JSON is stored as an object, queryable by other programs')
  promises.records.set(plainId, JSON.stringify({ cookie: {}, foreign: true }))
  t.same((await plain.app.inject({ url: '/read', cookies: plainJar.cookies })).json().isNew, true, 'a record in another program\'s shape is no session of ours')
  await plain.app.revokeSessions('nobody')

  // A touch-less store renews by rewriting the record; a record gone meanwhile is not renewed.
  const clock = FakeTimers.install({ now: Date.now(), toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
  const renewJar = new Jar()
  renewJar.take(await plain.app.inject({ url: '/login/bob', cookies: renewJar.cookies }))
  clock.tick(7 * 3600_000)
  t.ok(setCookie(renewJar.take(await plain.app.inject({ url: '/read', cookies: renewJar.cookies }))), 'renewed')
  clock.tick(7 * 3600_000)
  promises.records.delete(await idOf(renewJar.cookies.session as string))
  t.same((await plain.app.inject({ url: '/read', cookies: renewJar.cookies })).json().isNew, true)
})

t.test('MemoryStore: bounded by entries and bytes, expiring, swept without keeping the process alive', async (t) => {
  const store = new MemoryStore({ maxEntries: 3, maxBytes: 10_000, sweepInterval: 5 })
  t.teardown(() => { store.close() })
  for (const id of ['a', 'b', 'c', 'd']) await store.put(id, 'x', null, 60_000)
  t.equal(store.size, 3, 'at most maxEntries')
  t.equal(await store.get('a'), undefined, 'the least recently used went first')
  await store.put('big', 'y'.repeat(4_000), null, 60_000)
  await store.put('bigger', 'y'.repeat(4_000), null, 60_000)
  t.ok(store.size <= 2, `at most maxBytes (${store.size} left)`)
  await store.put('short', 'z', null, 10, 'user')
  await new Promise((resolve) => setTimeout(resolve, 40))
  t.equal(await store.get('short'), undefined, 'expired')
  t.equal(await store.revoke('user'), 0, 'and swept from its user\'s index')
  t.equal(await store.destroy('short', 'user'), false, 'a destroy names the owner, as a hint')
  await store.put('listed', 'x', null, 60_000, 'someone')
  t.equal(await store.revoke('someone'), 1, 'revoke() still ends what is listed under a user (the plugin no longer calls it)')
  t.equal(await store.touch('gone', 1000), false)
  t.same(await store.put('bigger', 'new', 99, 1000), { ok: false, current: { data: 'y'.repeat(4_000), version: 1 } }, 'a stale version is refused with what is there')
  t.same(await store.put('missing', 'new', 1, 1000), { ok: false, current: undefined }, 'an update of a record that is gone is refused')
  for (const bad of [{ maxEntries: 0 }, { maxBytes: 1.5 }, { sweepInterval: -1 }]) {
    t.throws(() => new MemoryStore(bad), { name: 'TypeError', message: /must be a whole number, 1 or more/ })
  }
  // A process holding a MemoryStore ends when its work is done: the sweep timer is unref'd.
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', `
    const { MemoryStore } = await import(${JSON.stringify(new URL('../dist/esm/index.js', import.meta.url).href)})
    new MemoryStore({ sweepInterval: 1000 }); console.log('done')`], { encoding: 'utf8', timeout: 20_000 })
  t.equal(child.stdout.trim(), 'done')
  t.equal(child.status, 0, 'the process exited by itself')
})

t.test('store options are checked at registration', async (t) => {
  const bad: Array<[Partial<EncryptedSessionOptions>, RegExp]> = [
    [{ store: {} as never }, /store must be a MemoryStore, a RedisStore, or an express-session store/],
    [{ store: new MemoryStore(), storeTimeout: 0 }, /storeTimeout must be a whole number of milliseconds/],
    [{ store: new MemoryStore(), encryptStore: 'yes' as never }, /encryptStore must be true or false/],
    [{ store: new MemoryStore(), userId: 'id' as never }, /userId must be a function/],
    [{ storeTimeout: 100 }, /storeTimeout, encryptStore and userId go with store/]
  ]
  for (const [options, message] of bad) {
    const app = Fastify()
    app.register(encryptedSession, { key: KEY, ...options })
    await t.rejects(async () => { await app.ready() }, { name: 'TypeError', message })
  }
})

t.test('absoluteLifetime in a store, as in the cookie', async (t) => {
  const clock = FakeTimers.install({ now: Date.now(), toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
  const { app } = await storeApp(t, { store: new MemoryStore(), absoluteLifetime: 600, rolling: 60 })
  const jar = new Jar()
  jar.take(await app.inject({ url: '/set/a/1', cookies: jar.cookies }))
  for (let minute = 0; minute < 9; minute++) {
    clock.tick(61_000)
    jar.take(await app.inject({ url: '/read', cookies: jar.cookies }))
  }
  t.same((await app.inject({ url: '/read', cookies: jar.cookies })).json().isNew, false, 'active for nine minutes: still in')
  clock.tick(120_000)
  t.same((await app.inject({ url: '/read', cookies: jar.cookies })).json(), { isNew: true, data: {} }, 'past ten minutes since it was created: over, however active')
})

t.test('the express-session adapter at its edges', async (t) => {
  const { ExpressStoreAdapter } = await import('../lib/stores/express.js')
  const failing = {
    get: (_sid: string, callback: (error?: unknown) => void) => { callback(new Error('connection reset')) },
    set: (_sid: string, _session: unknown, callback: (error?: unknown) => void) => { callback() },
    destroy: (_sid: string, callback: (error?: unknown) => void) => { callback() }
  }
  await t.rejects(new ExpressStoreAdapter(failing, { plain: false, timeout: 1000, endedFor: 60_000 }).get('x'), /connection reset/, 'a callback error is a rejection')
  const { app } = await storeApp(t, { store: failing })
  // A valid cookie (from a server whose store works), so that the failing store is asked.
  const working = await storeApp(t, { store: new MemoryStore() })
  const response = await app.inject({ url: '/read', cookies: { session: await working.app.encodeSession({ a: 1 }) } })
  t.equal(response.statusCode, 503, 'and a 503 through the plugin')

  const store = new PromiseStore()
  const adapter = new ExpressStoreAdapter(store, { plain: false, timeout: 1000, endedFor: 60_000 })
  t.same(await adapter.put('id', 'data', null, 1000), { ok: true, version: 1 })
  t.same(await adapter.put('id', 'other', null, 1000), { ok: false, current: { data: 'data', version: 1 } }, 'a taken id is refused')
  t.equal(await adapter.touch('missing', 1000), false, 'no touch(): a record that is gone is not renewed')
  await adapter.destroy('id')
  t.equal(await adapter.get('id'), undefined)
  await store.set('odd', { cookie: {}, version: 'one', data: 'x' })
  t.equal(await adapter.get('odd'), undefined, 'a record without our version is no session of ours')
})

t.test('logout then a flash message: the ended session stays ended, the message goes to a new one', async (t) => {
  const store = new MemoryStore()
  const { app } = await buildApp({ key: KEY, store }, (app) => {
    app.get('/login', async (request) => { request.session.login({ id: 'ada' }); return {} })
    app.get('/logout', async (request) => {
      request.session.logout()
      request.session.flash('info', 'You are logged out')
      return {}
    })
    app.get('/read', async (request) => ({ isNew: request.session.isNew, data: request.session.data() }))
  })
  const jar = new Jar()
  jar.take(await app.inject({ url: '/login', cookies: jar.cookies }))
  const copy = jar.cookies.session as string
  jar.take(await app.inject({ url: '/logout', cookies: jar.cookies }))
  t.not(await idOf(jar.cookies.session as string), await idOf(copy), 'the message lives under a new id')
  t.same((await app.inject({ url: '/read', cookies: { session: copy } })).json(), { isNew: true, data: {} }, 'the logged-out cookie opens nothing')
  t.same((await app.inject({ url: '/read', cookies: jar.cookies })).json().data, { _flashes: [['info', 'You are logged out']] })
  t.equal(store.size, 1, 'only the new session is stored')
})

t.test('MemoryStore defaults: 100,000 sessions, a sweep every minute', async (t) => {
  const clock = FakeTimers.install({ toFake: ['setInterval', 'clearInterval'] })
  t.teardown(() => clock.uninstall())
  const store = new MemoryStore()
  t.teardown(() => { store.close() })
  for (let i = 0; i <= 100_000; i++) await store.put(`id${i}`, 'x', null, 3_600_000)
  t.equal(store.size, 100_000, 'the 100,001st pushed out the least recently used')
  t.equal(await store.get('id0'), undefined)
  await store.put('brief', 'x', null, 1)
  await new Promise((resolve) => setTimeout(resolve, 5))
  const before = store.size
  clock.tick(59_999)
  t.equal(store.size, before, 'no sweep before a minute')
  clock.tick(1)
  t.equal(store.size, before - 1, 'the expired session swept after a minute')
})

t.test('reading an unchanged stored session again costs no decryption', async (t) => {
  const store = new MemoryStore()
  const { app } = await storeApp(t, { store })
  const other = await storeApp(t, { store })
  const jar = new Jar()
  jar.take(await app.inject({ url: '/set/a/1', cookies: jar.cookies }))
  const events = spyOnSubtle(t)
  for (let i = 0; i < 3; i++) t.same((await app.inject({ url: '/read', cookies: jar.cookies })).json().data, { a: '1' })
  t.same(events, [], 'the cookie\'s token and the stored data were both verified before: no WebCrypto call at all')
  // Another server (a process of its own would be the same) writes the session.
  await other.app.inject({ url: '/set/b/2', cookies: jar.cookies })
  events.length = 0
  t.same((await app.inject({ url: '/read', cookies: jar.cookies })).json().data, { a: '1', b: '2' }, 'the new data is read, not a remembered one')
  t.same(events.filter((event) => event === 'decrypt:start').length, 1, 'decrypted once')
  events.length = 0
  await app.inject({ url: '/read', cookies: jar.cookies })
  t.same(events, [], 'and remembered from then on')
  const cold = await storeApp(t, { store, cacheSize: 0 })
  events.length = 0
  await cold.app.inject({ url: '/read', cookies: jar.cookies })
  t.same(events.filter((event) => event === 'decrypt:start').length, 2, 'cacheSize 0: the cookie and the data are decrypted every time')
})

t.test('saved again within the same second, a session gets the same cookie token, sealed once', async (t) => {
  const clock = FakeTimers.install({ now: 1_750_000_000_000, toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
  const { app } = await storeApp(t, { store: new MemoryStore() })
  const jar = new Jar()
  const login = setCookie(jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies })))?.value as string
  const events = spyOnSubtle(t)
  const seals = (): number => events.filter((event) => event === 'encrypt:start').length
  const first = setCookie(await app.inject({ url: '/set/a/1', cookies: jar.cookies }))?.value
  t.equal(first, login, 'the same id in the same second: the token the login issued')
  t.equal(seals(), 1, 'one seal: the stored record; the cookie token is not sealed again')
  clock.tick(1000)
  events.length = 0
  const second = setCookie(await app.inject({ url: '/set/a/2', cookies: jar.cookies }))?.value as string
  t.not(second, login, 'a second later: a new token')
  t.equal(await idOf(second), await idOf(login), 'of the same session')
  t.equal(await new Fernet(KEY).extractTimestamp(second), await new Fernet(KEY).extractTimestamp(login) + 1, 'made at the time of the change')
  t.equal(seals(), 2, 'the record and the new token')
  events.length = 0
  t.equal(setCookie(await app.inject({ url: '/set/a/3', cookies: jar.cookies }))?.value, second, 'and again the same within that second')
  t.same((await app.inject({ url: '/read', cookies: { session: login } })).json().data, { current_user: { id: 'ada' }, a: '3' }, 'every token of the session reads the same record')
  const cold = await storeApp(t, { store: new MemoryStore(), cacheSize: 0 })
  const coldJar = new Jar()
  const coldLogin = setCookie(coldJar.take(await cold.app.inject({ url: '/login/ada', cookies: coldJar.cookies })))?.value
  t.not(setCookie(await cold.app.inject({ url: '/set/a/1', cookies: coldJar.cookies }))?.value, coldLogin, 'cacheSize 0: nothing remembered, a token sealed every time')
})

t.test('a logged-in load asks for its record and its user\'s revocation record at once, once this server knows the user', async (t) => {
  const inner = new MemoryStore()
  const events: string[] = []
  // Each get answers on a later turn of the event loop, as a store across a network does.
  const slowGet = async (id: string): Promise<StoredSession | undefined> => {
    const what = id.startsWith('rev.') ? 'record' : 'session'
    events.push(`${what} asked`)
    await new Promise((resolve) => setImmediate(resolve))
    events.push(`${what} answered`)
    return await inner.get(id)
  }
  const store: SessionStore = { get: slowGet, put: inner.put.bind(inner), touch: inner.touch.bind(inner), destroy: inner.destroy.bind(inner) }
  const { app } = await storeApp(t, { store })
  const other = await storeApp(t, { store })
  const jar = new Jar()
  jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
  events.length = 0
  t.same((await other.app.inject({ url: '/read', cookies: jar.cookies })).json().data, { current_user: { id: 'ada' } })
  t.same(events, ['session asked', 'session answered', 'record asked', 'record answered'], 'a server that never saw the session: the record names the user, then the user\'s record is read')
  events.length = 0
  t.same((await app.inject({ url: '/read', cookies: jar.cookies })).json().data, { current_user: { id: 'ada' } })
  t.same(events, ['session asked', 'record asked', 'session answered', 'record answered'], 'the server that logged the user in: both at once, one round-trip')
  events.length = 0
  t.same((await other.app.inject({ url: '/read', cookies: jar.cookies })).json().data, { current_user: { id: 'ada' } })
  t.same(events, ['session asked', 'record asked', 'session answered', 'record answered'], 'and the other server once it has seen it')

  // Another server makes the session another user's, without a new id; that user is revoked.
  await other.app.inject({ url: '/set/current_user/bob', cookies: jar.cookies })
  await app.revokeSessions('bob')
  events.length = 0
  t.same((await app.inject({ url: '/read', cookies: jar.cookies })).json(), { isNew: true, data: {} }, 'read ahead for ada, checked against bob\'s record: refused')
  t.same(events, ['session asked', 'record asked', 'session answered', 'record answered', 'record asked', 'record answered'], 'the record read ahead was not the one that decides')
  jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
  inner.get = async () => { throw new Error('down') }
  t.equal((await app.inject({ url: '/read', cookies: jar.cookies })).statusCode, 503, 'both reads fail: one 503, and the unused failure is no unhandled rejection')
})

t.test('a revocation record read ahead of the session only confirms: revokeSessions\' except rewritten meanwhile stands', async (t) => {
  for (const revokedBefore of [false, true]) {
    const inner = new MemoryStore()
    const events: string[] = []
    let holdSession: Promise<void> | undefined
    const store: SessionStore = {
      async get (id) {
        const what = id.startsWith('rev.') ? 'record' : 'session'
        events.push(`${what} asked`)
        // This one session read waits until the revoke below is done; the record read ahead does not.
        if (what === 'session' && holdSession !== undefined) {
          await holdSession
          events.push('held session answered')
        }
        return await inner.get(id)
      },
      put: inner.put.bind(inner),
      touch: inner.touch.bind(inner),
      destroy: async (id, user) => { events.push('destroy'); return await inner.destroy(id, user) }
    }
    const { app } = await buildApp({ key: KEY, store }, (app) => {
      routes(app)
      app.get('/revoke-others', async (request) => {
        await app.revokeSessions('ada', { except: request.session })
        return {}
      })
    })
    t.teardown(async () => { await app.close() })
    if (revokedBefore) await app.revokeSessions('ada')
    const jar = new Jar()
    jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
    const other = new Jar()
    other.take(await app.inject({ url: '/login/ada', cookies: other.cookies }))
    await app.inject({ url: '/read', cookies: jar.cookies })
    let release = (): void => {}
    holdSession = new Promise((resolve) => { release = resolve })
    events.length = 0
    // Its session read is held; its user's record is read ahead at once, before the revoke.
    const loading = app.inject({ url: '/read', cookies: jar.cookies })
    while (!events.includes('record asked')) await new Promise((resolve) => setImmediate(resolve))
    holdSession = undefined
    t.equal((await app.inject({ url: '/revoke-others', cookies: jar.cookies })).statusCode, 200)
    release()
    t.same((await loading).json(), { isNew: false, data: { current_user: { id: 'ada' } } }, `${revokedBefore ? 'a user revoked before' : 'a first revoke'}: the load sees the kept session`)
    t.notOk(events.includes('destroy'), 'and deletes nothing')
    t.ok(events.lastIndexOf('record asked') > events.indexOf('held session answered'), 'the record read ahead disagreed with the session: it was read again, after the session')
    t.same((await app.inject({ url: '/read', cookies: jar.cookies })).json().data, { current_user: { id: 'ada' } }, 'the kept session stands')
    t.same((await app.inject({ url: '/read', cookies: other.cookies })).json(), { isNew: true, data: {} }, 'the other one is ended')
  }
})

t.test('a store holds sessions of any size: past Fernet\'s default 64 KiB token bound and a cookie\'s 4 KB', async (t) => {
  const store = new MemoryStore()
  const { app } = await buildApp({ key: KEY, store }, (app) => {
    app.post('/big', async (request) => { request.session.set('blob', (request.body as { blob: string }).blob); return {} })
    app.get('/size', async (request) => ({ length: (request.session.get('blob') as string | undefined)?.length ?? 0 }))
  })
  const jar = new Jar()
  const saved = jar.take(await app.inject({ method: 'POST', url: '/big', payload: { blob: 'x'.repeat(200_000) }, cookies: jar.cookies }))
  t.equal(saved.statusCode, 200)
  t.ok((jar.cookies.session as string).length < 200, 'the cookie stays a small token of the id')
  t.same((await app.inject({ url: '/size', cookies: jar.cookies })).json(), { length: 200_000 }, 'read back whole')
  const stored = await store.get(await idOf(jar.cookies.session as string))
  t.ok((stored?.data.length ?? 0) > 65_536, `stored as one Fernet token of ${stored?.data.length ?? 0} characters`)
})

t.test('a stored token belongs to its session: copied into another record, or sent as a cookie, it opens nothing', async (t) => {
  const store = new MemoryStore()
  const { app, logs } = await storeApp(t, { store })
  const root = new Jar()
  root.take(await app.inject({ url: '/login/root', cookies: root.cookies }))
  const mallory = new Jar()
  mallory.take(await app.inject({ url: '/login/mallory', cookies: mallory.cookies }))
  const rootRecord = await store.get(await idOf(root.cookies.session as string)) as StoredSession
  const malloryId = await idOf(mallory.cookies.session as string)
  const malloryRecord = await store.get(malloryId) as StoredSession
  // Whoever can write the store copies root's data token into Mallory's record.
  await store.put(malloryId, rootRecord.data, malloryRecord.version, 60_000)
  const opened = await app.inject({ url: '/read', cookies: mallory.cookies })
  t.same(opened.json(), { isNew: true, data: {} }, 'Mallory is not root: a fresh session')
  t.ok(logs.some((line) => line.reason === 'foreign-record'), 'logged with the reason')
  t.same((await app.inject({ url: '/read', cookies: root.cookies })).json().data, { current_user: { id: 'root' } }, 'root\'s own session is unharmed')

  // Whoever can only read the store holds no cookies: a cookie-mode app with the same key (or a
  // Python app reading Fernet of JSON) opens nothing from a stored token.
  const cookieMode = await buildApp({ key: KEY }, routes)
  t.teardown(async () => { await cookieMode.app.close() })
  t.same((await cookieMode.app.inject({ url: '/read', cookies: { session: rootRecord.data } })).json(), { isNew: true, data: {} })
})
