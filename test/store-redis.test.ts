// Store mode on a real Redis (Debian's redis-server, started by the test on a free loopback
// port): the behavioural suite with RedisStore and with connect-redis, what Redis holds,
// revocation and concurrent writes across two server processes, and an outage under load.
import t, { type Test } from 'tap'
import { RedisStore as ConnectRedisStore } from 'connect-redis'
import { createClient } from 'redis'
import { Fernet } from '../index.js'
import { RedisStore } from '../lib/stores/redis.js'
import { sessionBehaviours } from './helpers/behaviours.js'
import { buildApp } from './helpers/app.js'
import { serversMissing, startRedis } from './helpers/servers.js'
import { type ChildServer, startChildServer, httpBrowser } from './helpers/child-server.js'

const skip = serversMissing('redis')
const KEY = Fernet.generateKey()

// eslint-disable-next-line @typescript-eslint/explicit-function-return-type -- node-redis's client type is best inferred
async function connect (t: Test, url: string) {
  const client = createClient({ url, socket: { reconnectStrategy: (retries: number) => Math.min(50 * retries, 500) } })
  client.on('error', () => {})
  await client.connect()
  t.teardown(async () => { client.destroy() })
  return client
}

t.test('RedisStore passes the behavioural suite', { skip }, async (t) => {
  const redis = await startRedis(t)
  await sessionBehaviours(t, { store: new RedisStore({ client: await connect(t, redis.url) }) })
})

t.test('connect-redis, an express-session store, passes it too', { skip }, async (t) => {
  const redis = await startRedis(t)
  await sessionBehaviours(t, { store: new ConnectRedisStore({ client: await connect(t, redis.url) }) })
})

t.test('what Redis holds: prefixed keys that Redis expires, and nothing readable', { skip }, async (t) => {
  const redis = await startRedis(t)
  const client = await connect(t, redis.url)
  const { app } = await buildApp({ key: KEY, ttl: 3600, store: new RedisStore({ client, prefix: 'myapp:' }) }, (app) => {
    app.get('/login', async (request) => { request.session.login({ id: 'ada-lovelace', email: 'ada@example.org' }); request.session.set('note', 'secret-note'); return {} })
  })
  await app.inject('/login')
  const keys = (await client.keys('*')).sort()
  t.equal(keys.length, 1, `a session, and no list of the user's sessions: ${keys.join(', ')}`)
  const sessionKey = keys[0] as string
  t.match(sessionKey, /^myapp:s:[\w-]{22}$/, 'under the prefix')
  const ttl = await client.pTTL(sessionKey)
  t.ok(ttl > 3_590_000 && ttl <= 3_600_000, `Redis expires the session itself (PTTL ${ttl} ms for a ttl of 3,600 s)`)
  const hash = await client.hGetAll(sessionKey)
  t.same(Object.keys(hash).sort(), ['d', 'v'])
  t.match(hash.d, /^gAAAAA/, 'the data is a Fernet token')
  await app.revokeSessions('ada-lovelace')
  const after = (await client.keys('*')).sort()
  const recordKey = after.find((key) => key !== sessionKey) as string
  t.match(recordKey, /^myapp:s:rev\.[\w-]{43}$/, 'a revoke writes one record, named by an HMAC of the user id')
  const recordTtl = await client.pTTL(recordKey)
  t.ok(recordTtl > 7_190_000 && recordTtl <= 7_200_000, `that Redis expires after twice maxTtl (PTTL ${recordTtl} ms)`)
  const dump = JSON.stringify({ after, hash, record: await client.hGetAll(recordKey) })
  t.notMatch(dump, /ada|secret-note|example\.org/, 'a dump of Redis reveals no user, no data')
})

t.test('scripts Redis forgot (a restart, SCRIPT FLUSH) are sent again', { skip }, async (t) => {
  const redis = await startRedis(t)
  const client = await connect(t, redis.url)
  const store = new RedisStore({ client })
  t.same(await store.put('id-1', 'data', null, 10_000), { ok: true, version: 1 })
  await client.scriptFlush()
  t.same(await store.put('id-1', 'more', 1, 10_000), { ok: true, version: 2 }, 'NOSCRIPT: the script itself, once more')
  t.same(await store.get('id-1'), { data: 'more', version: 2 })
  t.equal(await store.get('missing'), undefined, 'no record: undefined')
  t.same(await store.put('id-1', 'x', 1, 10_000), { ok: false, current: { data: 'more', version: 2 } }, 'a stale version is refused, with what is there')
  t.same(await store.put('id-1', 'x', null, 10_000), { ok: false, current: { data: 'more', version: 2 } }, 'a taken id is refused')
  t.same(await store.put('gone', 'x', 3, 10_000), { ok: false, current: undefined })
  t.equal(await store.touch('gone', 10_000), false)
  await client.set('fes:s:broken', 'not a hash')
  await t.rejects(store.get('broken'), /WRONGTYPE/, 'other errors are not taken for NOSCRIPT')
  await t.rejects(store.put('broken', 'x', 1, 1000), /WRONGTYPE/)
  t.throws(() => new RedisStore({} as never), { name: 'TypeError', message: /RedisStore needs \{ client \}/ })
  t.throws(() => new RedisStore(undefined as never), { name: 'TypeError', message: /RedisStore needs \{ client \}/ })
  t.throws(() => new RedisStore({ client, prefix: 5 as never }), { name: 'TypeError', message: /prefix must be a string/ })
})

type Server = ChildServer

async function startServer (t: Test, redisUrl: string, env: Record<string, string> = {}): Promise<Server> {
  return await startChildServer(t, 'store-server.mjs', { REDIS_URL: redisUrl, KEYS: KEY, ...env })
}


t.test('revocation: at once, on every server sharing the Redis', { skip }, async (t) => {
  const redis = await startRedis(t)
  const [a, b] = await Promise.all([startServer(t, redis.url), startServer(t, redis.url)]) as [Server, Server]
  const phone = httpBrowser()
  const laptop = httpBrowser()
  await phone.get(a, '/login/ada')
  await laptop.get(b, '/login/ada')
  const readOnB = await phone.get(b, '/read')
  t.same(readOnB.body.data, { current_user: { id: 'ada' } }, 'a session made on one server is read on the other')
  t.same((await httpBrowser().get(a, '/revoke/ada', 'POST')).body, { revoked: true }, 'server A ends both of ada\'s sessions')
  t.same((await phone.get(b, '/read')).body, { pid: readOnB.body.pid, isNew: true, data: {} }, 'server B sees it at the next request')
  t.same((await laptop.get(a, '/read')).body.isNew, true)
})

t.test('no lost updates: concurrent requests to two servers change different keys, all survive', { skip }, async (t) => {
  const redis = await startRedis(t)
  const [a, b] = await Promise.all([startServer(t, redis.url), startServer(t, redis.url)]) as [Server, Server]
  const user = httpBrowser()
  await user.get(a, '/set/start/0')
  // The same cookie on 16 requests at once, half to each server: each loads the session
  // before the others save.
  const answers = await Promise.all(Array.from({ length: 16 }, async (_, i) => await user.get(i % 2 === 0 ? a : b, `/set/k${i}/${i}`)))
  t.same(answers.map((answer) => answer.status), Array(16).fill(200), 'every write answered 200')
  t.equal(new Set(answers.map((answer) => answer.body.pid)).size, 2, 'both servers wrote')
  const { data } = (await user.get(a, '/read')).body
  t.same(Object.keys(data).sort(), ['k0', 'k1', 'k10', 'k11', 'k12', 'k13', 'k14', 'k15', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8', 'k9', 'start'], 'every key every request wrote')
  t.same((await user.get(b, '/set/k0/last')).status, 200)
  t.equal((await user.get(a, '/read')).body.data.k0, 'last', 'the same key written later: the later value')
})

t.test('Redis down under load: 503s with the reason, never a crash, a logout or another user\'s data', { skip }, async (t) => {
  const redis = await startRedis(t, { appendonly: true })
  const server = await startServer(t, redis.url, { STORE_TIMEOUT: '300' })
  const users = ['ada', 'bob', 'cy', 'di'].map((name) => ({ name, jar: httpBrowser() }))
  for (const { name, jar } of users) await jar.get(server, `/login/${name}`)
  const statuses = new Map<number, number>()
  const problems: string[] = []
  let running = true
  const load = users.map(async ({ name, jar }) => {
    while (running) {
      const answer = await jar.get(server, '/read').catch((error: Error) => ({ status: 0, body: error.message }))
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)
      if (answer.status === 200 && answer.body.data.current_user?.id !== name) problems.push(`${name} got ${JSON.stringify(answer.body)}`)
      if (answer.status !== 200 && answer.status !== 503) problems.push(`${name}: status ${answer.status} ${JSON.stringify(answer.body)}`)
      if (answer.status === 503 && !/session store is unavailable/.test(String(answer.body?.message))) problems.push(`${name}: a 503 without the reason`)
    }
  })
  await new Promise((resolve) => setTimeout(resolve, 500))
  await redis.stop()
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const during = statuses.get(503) ?? 0
  await redis.start()
  await new Promise((resolve) => setTimeout(resolve, 1500))
  running = false
  await Promise.all(load)
  t.same(problems, [], 'only 200s with the user\'s own data, and 503s that say why')
  t.ok(during > 0, `the outage was answered 503 (${during} times)`)
  t.ok((statuses.get(200) ?? 0) > during, `and most requests before and after it succeeded (${statuses.get(200) ?? 0})`)
  for (const { name, jar } of users) {
    t.same((await jar.get(server, '/read')).body.data, { current_user: { id: name } }, `${name} is still logged in once Redis is back`)
  }
  t.ok(server.alive(), 'the server never stopped')
  t.match(server.output(), /session store is unavailable \(get\): no answer within 300 ms/, 'the 503s were logged with their reason')
  t.notMatch(server.output(), /Unhandled|uncaught/i)
})

t.test('the default prefix is fes:, with sessions under fes:s:<id>, as the README says', { skip }, async (t) => {
  const { readFileSync } = await import('node:fs')
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  t.match(readme, /`prefix`, `fes:` by default/, 'the README names the default prefix')
  t.match(readme, /`fes:s:<session id>`/, 'and the session keys')
  const redis = await startRedis(t)
  const client = await connect(t, redis.url)
  const { app } = await buildApp({ key: KEY, store: new RedisStore({ client }) }, (app) => {
    app.get('/login', async (request) => { request.session.login({ id: 7 }); return {} })
  })
  await app.inject('/login')
  const keys = await client.keys('*')
  t.ok(keys.length > 0 && keys.every((key) => key.startsWith('fes:')), `every key under fes: (${keys.join(', ')})`)
  t.equal(keys.filter((key) => /^fes:s:[A-Za-z0-9_-]+$/.test(key)).length, 1, 'one session, under fes:s:<id>')
})
