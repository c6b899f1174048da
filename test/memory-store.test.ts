// MemoryStore's budgets (issue 17, finding 5): anonymous traffic cannot end logged-in sessions,
// and a flood of cookie-less requests costs bounded memory. And what a session over maxBytes is
// answered (issue 20, item 9): not "the store is unavailable".
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { Fernet, MemoryStore } from '../index.js'
import { buildApp, setCookie } from './helpers/app.js'
import { Jar } from './helpers/behaviours.js'

const KEY = Fernet.generateKey()

function routes (app: FastifyInstance): void {
  // What a visitor's first request often does: a counter, a CSRF secret, a flash.
  app.get('/visit', async (request) => {
    request.session.set('visits', ((request.session.get('visits') as number | undefined) ?? 0) + 1)
    return {}
  })
  app.get('/login/:id', async (request) => { request.session.login({ id: (request.params as { id: string }).id }); return {} })
  app.get('/me', async (request) => ({ user: (request.session.user as { id: string } | undefined)?.id ?? null }))
  app.get('/fill/:size', async (request) => { request.session.set('blob', 'x'.repeat(Number((request.params as { size: string }).size))); return { secret: 'route-data' } })
}

async function app (t: Test, store: MemoryStore): Promise<Awaited<ReturnType<typeof buildApp>>> {
  const built = await buildApp({ key: KEY, store }, routes)
  t.teardown(async () => { await built.app.close(); store.close() })
  return built
}

async function logIn (t: Test, server: FastifyInstance, count: number): Promise<Jar[]> {
  const users: Jar[] = []
  for (let i = 0; i < count; i++) {
    const jar = new Jar()
    jar.take(await server.inject({ url: `/login/user${i}`, cookies: jar.cookies }))
    users.push(jar)
  }
  t.equal((await server.inject({ url: '/me', cookies: users[0]?.cookies })).json().user, 'user0', 'logged in')
  return users
}

async function stillLoggedIn (server: FastifyInstance, users: Jar[]): Promise<number> {
  let count = 0
  for (const [i, jar] of users.entries()) {
    if ((await server.inject({ url: '/me', cookies: jar.cookies })).json().user === `user${i}`) count++
  }
  return count
}

t.test('maxEntries 2000: 2,500 cookie-less writing requests log out 0 of 20 users, and the store stays at its bound', async (t) => {
  const store = new MemoryStore({ maxEntries: 2000 })
  const { app: server } = await app(t, store)
  const users = await logIn(t, server, 20)
  const statuses = new Set<number>()
  for (let i = 0; i < 2500; i++) statuses.add((await server.inject('/visit')).statusCode)
  t.same([...statuses], [200], 'every visitor\'s session was stored')
  t.equal(await stillLoggedIn(server, users), 20, 'every user still logged in')
  t.equal(store.size, 2000, 'the store holds its bound, no more')
  // A visitor who comes back soon after is still known: only the least recently used went.
  const visitor = new Jar()
  visitor.take(await server.inject({ url: '/visit', cookies: visitor.cookies }))
  visitor.take(await server.inject({ url: '/visit', cookies: visitor.cookies }))
  t.equal(store.size, 2000)
})

t.test('defaults: 100,500 anonymous records do not push out a logged-in one; entries and bytes stay bounded', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => { store.close() })
  await store.put('user-session', 'token', null, 3_600_000, 'user-index')
  await store.put('rev.some-user', 'generation', null, 3_600_000)
  for (let i = 0; i < 100_500; i++) await store.put(`visitor${i}`, 'x', null, 3_600_000)
  t.equal(store.size, 100_000, 'at maxEntries')
  t.same(await store.get('user-session'), { data: 'token', version: 1 }, 'the logged-in session is still there')
  t.same(await store.get('rev.some-user'), { data: 'generation', version: 1 }, 'and so is a revocation record, though it was put without a user')
  t.equal(await store.get('visitor0'), undefined, 'the oldest visitors went instead')
  t.ok(await store.get('visitor100499'), 'the newest is there')
})

t.test('a flood of cookie-less requests costs bounded bytes: maxBytes holds, users stay', async (t) => {
  const store = new MemoryStore({ maxBytes: 400_000 })
  const { app: server } = await app(t, store)
  const users = await logIn(t, server, 20)
  const logged = store.bytes
  t.ok(logged > 0 && logged < 400_000, `the users' sessions weigh ${logged} bytes`)
  let peak = 0
  const statuses = new Set<number>()
  for (let i = 0; i < 1500; i++) {
    statuses.add((await server.inject('/fill/400')).statusCode)
    peak = Math.max(peak, store.bytes)
  }
  t.same([...statuses], [200], 'every visitor\'s session was stored')
  t.ok(peak <= 400_000, `at most maxBytes at any time (peak ${peak})`)
  t.ok(store.size < 1500, `older visitors went (${store.size} records)`)
  t.equal(await stillLoggedIn(server, users), 20, 'every user still logged in')
})

t.test('budgets: anonymous records go first, whoever writes; guarded ones only for other guarded ones', async (t) => {
  const store = new MemoryStore({ maxEntries: 3 })
  t.teardown(() => { store.close() })
  await store.put('u1', 'a', null, 60_000, 'ada')
  await store.put('v1', 'a', null, 60_000)
  await store.put('v2', 'a', null, 60_000)
  await store.put('u2', 'a', null, 60_000, 'bob')
  t.equal(await store.get('v1'), undefined, 'a login pushed out the oldest visitor, not a user')
  t.ok(await store.get('u1'))
  await store.put('u3', 'a', null, 60_000, 'cy')
  t.equal(await store.get('v2'), undefined, 'and then the last visitor')
  await t.rejects(store.put('v3', 'a', null, 60_000), { name: 'StoreRefusal', reason: 'full', message: 'every one of its 3 records (' + String(store.bytes) + ' bytes) belongs to a logged-in user' }, 'a visitor finding only logged-in sessions is refused')
  t.equal(store.size, 3)
  for (const id of ['u1', 'u2', 'u3']) t.ok(await store.get(id), `${id} is still there`)
  await store.put('u4', 'a', null, 60_000, 'dee')
  t.equal(await store.get('u1'), undefined, 'a login at a bound full of logins pushes out the least recently used one')
  t.equal(await store.revoke('ada'), 0, 'and took it out of its user\'s index')
  t.equal(await store.revoke('bob'), 1, 'revoke() still ends a user\'s sessions')
  await store.put('v4', 'a', null, 60_000)
  t.same(await store.put('v4', 'b', 1, 60_000, 'eve'), { ok: true, version: 2 }, 'a visitor\'s record written with a user becomes guarded')
  await store.put('v5', 'a', null, 60_000, 'fay')
  await t.rejects(store.put('v6', 'a', null, 60_000), { name: 'StoreRefusal', reason: 'full' })
  t.same(await store.get('v4'), { data: 'b', version: 2 })
})

t.test('an anonymous update refused for room keeps the record as it was', async (t) => {
  const store = new MemoryStore({ maxEntries: 10, maxBytes: 1000 })
  t.teardown(() => { store.close() })
  await store.put('user', 'u'.repeat(300), null, 60_000, 'ada')
  await store.put('visit', 'v', null, 60_000)
  await t.rejects(store.put('visit', 'w'.repeat(400), 1, 60_000), { name: 'StoreRefusal', reason: 'full' })
  t.same(await store.get('visit'), { data: 'v', version: 1 }, 'the old version stands')
  t.equal(store.bytes, 2 * (300 + 4 + 3) + 64 + 2 * (1 + 5) + 64, 'counted once')
  await store.put('visit', 'w'.repeat(100), 1, 60_000)
  t.equal(store.bytes, 2 * (300 + 4 + 3) + 64 + 2 * (100 + 5) + 64, 'an update replaces its own bytes')
})

t.test('expired records are no one\'s: they make room even for a visitor, and are swept', async (t) => {
  const store = new MemoryStore({ maxEntries: 2, sweepInterval: 5 })
  t.teardown(() => { store.close() })
  await store.put('old-login', 'a', null, 10, 'ada')
  await store.put('login', 'a', null, 60_000, 'bob')
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.same(await store.put('visit', 'a', null, 60_000), { ok: true, version: 1 }, 'the expired login made room')
  t.ok(await store.get('login'))
  t.equal(await store.touch('old-login', 60_000), false)
  t.equal(await store.destroy('login'), true)
  await store.put('brief', 'a', null, 5, 'cy')
  await new Promise((resolve) => setTimeout(resolve, 15))
  t.equal(await store.revoke('cy'), 0, 'swept, and out of the index')
  t.equal(store.size, 1)
  t.equal(await store.destroy('visit'), true)
  t.equal(await store.destroy('visit'), false)
  await store.put('late', 'a', null, 5, 'dee')
  await store.put('later', 'a', null, 5, 'dee')
  store.close()
  await new Promise((resolve) => setTimeout(resolve, 15))
  t.equal(await store.get('late'), undefined, 'expired, though not swept yet')
  t.equal(await store.revoke('dee'), 0, 'an expired record a revoke meets is not counted')
  t.equal(store.size, 0)
  t.equal(store.bytes, 0, 'every byte given back')
})

t.test('a session over maxBytes: not "the store is unavailable", but what happened; logged, the route\'s data kept out', async (t) => {
  const store = new MemoryStore({ maxBytes: 20_000 })
  const { app: server, logs } = await app(t, store)
  const jar = new Jar()
  jar.take(await server.inject({ url: '/login/ada', cookies: jar.cookies }))
  const big = await server.inject({ url: '/fill/12000', cookies: jar.cookies })
  t.equal(big.statusCode, 500, 'a fault of the data, which no retry fixes')
  t.match(big.json(), { statusCode: 500, code: 'FST_SESSION_TOO_LARGE_FOR_STORE', message: /^fastify-encrypted-session: the session was not saved, it is too large for the store \(a record of \d+ bytes does not fit in maxBytes \(20000\)\)$/ })
  t.notMatch(big.body, /route-data|xxxx/, 'neither the route\'s reply nor the session data')
  t.equal(setCookie(big), undefined, 'no cookie')
  t.ok(logs.some((line) => line.level === 50 && /too large for the store/.test(JSON.stringify(line))), 'logged at error')
  t.notOk(logs.some((line) => /xxxx/.test(JSON.stringify(line))), 'the data is not in the log')
  t.equal((await server.inject({ url: '/me', cookies: jar.cookies })).json().user, 'ada', 'the session as it was is still there')
})

t.test('a visitor at a bound full of logged-in sessions: 503 "the store is full", and users stay', async (t) => {
  const store = new MemoryStore({ maxEntries: 5 })
  const { app: server } = await app(t, store)
  const users = await logIn(t, server, 5)
  const refused = await server.inject('/visit')
  t.equal(refused.statusCode, 503)
  t.match(refused.json(), { code: 'FST_SESSION_STORE_FULL', message: 'fastify-encrypted-session: the session was not saved, the store is full (every one of its 5 records (' + String(store.bytes) + ' bytes) belongs to a logged-in user)' })
  t.equal(await stillLoggedIn(server, users), 5)
})

t.test('within a pool, the least recently used goes first: a read or a renewal counts as a use', async (t) => {
  const store = new MemoryStore({ maxEntries: 3 })
  t.teardown(() => { store.close() })
  for (const id of ['v1', 'v2', 'v3']) await store.put(id, 'a', null, 60_000)
  await store.get('v1')
  await store.put('v4', 'a', null, 60_000)
  t.equal(await store.get('v2'), undefined, 'v2 was the least recently used')
  await store.touch('v3', 60_000)
  await store.put('v5', 'a', null, 60_000)
  t.equal(await store.get('v1'), undefined, 'then v1, since v3 was renewed')
  t.ok(await store.get('v3'))
  t.ok(await store.get('v4'))
  t.ok(await store.get('v5'))
})

t.test('a revocation record is never pushed out for room, only expired: at the bound a write is refused instead', async (t) => {
  const store = new MemoryStore({ maxEntries: 3, sweepInterval: 5 })
  t.teardown(() => { store.close() })
  await store.put('rev.a', 'g1', null, 60_000, 'rev.a')
  await store.put('rev.b', 'g1', null, 60_000, 'rev.b')
  await store.put('u1', 'x', null, 60_000, 'ada')
  await store.put('u2', 'x', null, 60_000, 'bob')
  t.equal(await store.get('u1'), undefined, 'a login at the bound pushed out a login')
  await store.put('rev.c', 'g1', null, 60_000, 'rev.c')
  t.equal(await store.get('u2'), undefined, 'and so did a revocation')
  await t.rejects(store.put('rev.d', 'g1', null, 60_000, 'rev.d'), { name: 'StoreRefusal', reason: 'full' }, 'nothing left but revocation records: refused')
  await t.rejects(store.put('u3', 'x', null, 60_000, 'cy'), { name: 'StoreRefusal', reason: 'full' }, 'a login too')
  for (const id of ['rev.a', 'rev.b', 'rev.c']) t.ok(await store.get(id), `${id} stands`)
  await store.put('rev.a', 'g2', 1, 5, 'rev.a')
  await new Promise((resolve) => setTimeout(resolve, 30))
  t.equal(await store.get('rev.a'), undefined, 'expired')
  t.equal(store.size, 2, 'and swept')
})

t.test('cookie mode with a MemoryStore as revocationStore: revoking more users than it holds never brings a revoked cookie back', async (t) => {
  const store = new MemoryStore({ maxEntries: 2 })
  const { app: server } = await buildApp({ key: KEY, revocationStore: store }, routes)
  t.teardown(async () => { await server.close(); store.close() })
  const users = await logIn(t, server, 3)
  await server.revokeSessions('user0')
  await server.revokeSessions('user1')
  await t.rejects(server.revokeSessions('user2'), { statusCode: 503, code: 'FST_SESSION_STORE_FULL' }, 'a third revocation does not fit: said, not done by forgetting one')
  t.equal(await stillLoggedIn(server, users.slice(0, 2)), 0, 'both revoked cookies stay refused')
})
