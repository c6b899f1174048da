// RedisStore as people run Redis: one server, a primary with a replica behind Sentinel, and a
// 3-master cluster, each started by the test on loopback; the same suite on node-redis and on
// ioredis. Each session is one key (one hash slot), so every call runs on a cluster.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { Fernet } from '../index.js'
import { RedisStore } from '../lib/stores/redis.js'
import { buildApp } from './helpers/app.js'
import { Jar, sessionBehaviours } from './helpers/behaviours.js'
import { type ChildServer, startChildServer, httpBrowser } from './helpers/child-server.js'
import { CLIENTS, type ClientName, connectRedis, type Topology } from './helpers/redis-clients.js'
import { serversMissing, startRedis, startRedisCluster, startRedisSentinel } from './helpers/servers.js'

const skip = serversMissing('redis')
// Three topologies, each with servers in child processes: well past tap's default 30 s.
t.setTimeout(240_000)
const KEY = Fernet.generateKey()
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

async function app (t: Test, store: RedisStore): Promise<FastifyInstance> {
  const { app } = await buildApp({ key: KEY, store }, (app) => {
    app.get('/login/:id', async (request) => { request.session.login({ id: (request.params as { id: string }).id }); return {} })
    app.get('/logout', async (request) => { request.session.logout(); return {} })
    app.get('/set/:key/:value', async (request) => {
      const { key, value } = request.params as { key: string, value: string }
      request.session.set(key, value)
      return {}
    })
    app.get('/read', async (request) => ({ isNew: request.session.isNew, data: request.session.data() }))
  })
  t.teardown(async () => { await app.close() })
  return app
}


async function childServer (t: Test, client: ClientName, topology: Topology, env: Record<string, string> = {}): Promise<ChildServer> {
  return await startChildServer(t, 'store-server.mjs', { REDIS_TOPOLOGY: JSON.stringify(topology), REDIS_CLIENT: client, KEYS: KEY, ...env })
}

const read = async (app: FastifyInstance, jar: Jar): Promise<any> => jar.take(await app.inject({ url: '/read', cookies: jar.cookies })).json()
const send = async (app: FastifyInstance, jar: Jar, url: string): Promise<number> => jar.take(await app.inject({ url, cookies: jar.cookies })).statusCode

/** The in-process part of the suite for one client on one topology, each on a prefix of its own. */
async function suite (t: Test, client: ClientName, topology: Topology): Promise<void> {
  const connect = async (t: Test): Promise<Awaited<ReturnType<typeof connectRedis>>> => await connectRedis(t, client, topology)
  await t.test('the behavioural suite', async (t) => {
    await sessionBehaviours(t, { store: new RedisStore({ client: await connect(t), prefix: `${client}-b:` }) })
  })

  await t.test('login, logout, and revocation seen by another server', async (t) => {
    const prefix = `${client}-r:`
    // Two servers: each its own client and store, sharing only Redis.
    const a = await app(t, new RedisStore({ client: await connect(t), prefix }))
    const b = await app(t, new RedisStore({ client: await connect(t), prefix }))
    const phone = new Jar()
    const laptop = new Jar()
    const other = new Jar()
    t.equal(await send(a, phone, '/login/ada'), 200)
    t.equal(await send(b, laptop, '/login/ada'), 200)
    t.equal(await send(a, other, '/login/bob'), 200)
    t.same((await read(b, phone)).data, { current_user: { id: 'ada' } }, 'a login on A is read on B')
    await b.revokeSessions('ada')
    t.same(await read(a, phone), { isNew: true, data: {} }, 'A sees it at the next request')
    t.same(await read(a, laptop), { isNew: true, data: {} })
    t.same((await read(a, other)).data, { current_user: { id: 'bob' } }, 'another user\'s session stands')
    t.equal(await send(b, other, '/logout'), 200)
    t.same(await read(a, other), { isNew: true, data: {} }, 'a logout on B is seen on A')
  })

}

/** Two server processes per client on the topology, as behind a load balancer. */
async function childServers (t: Test, topology: Topology): Promise<Map<ClientName, [ChildServer, ChildServer]>> {
  const started = await Promise.all(CLIENTS.flatMap((client) => [0, 1].map(async () => await childServer(t, client, topology, { STORE_TIMEOUT: '500' }))))
  return new Map(CLIENTS.map((client, i) => [client, [started[2 * i], started[2 * i + 1]] as [ChildServer, ChildServer]]))
}

async function concurrentWrites (t: Test, servers: Map<ClientName, [ChildServer, ChildServer]>): Promise<void> {
  for (const [client, [a, b]] of servers) {
    const user = httpBrowser()
    t.equal((await user.get(a, '/set/start/0')).status, 200)
    const answers = await Promise.all(Array.from({ length: 16 }, async (_, i) => await user.get(i % 2 === 0 ? a : b, `/set/k${i}/${i}`)))
    t.same(answers.map((answer) => answer.status), Array(16).fill(200), `${client}: every write answered 200`)
    t.equal(new Set(answers.map((answer) => answer.body.pid)).size, 2, `${client}: both processes wrote`)
    const { data } = (await user.get(b, '/read')).body
    t.same(Object.keys(data).sort(), ['k0', 'k1', 'k10', 'k11', 'k12', 'k13', 'k14', 'k15', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8', 'k9', 'start'], `${client}: every key every request wrote`)
  }
}

/**
 * Redis goes away under load and comes back (a restart, a failover): one server process per
 * client meanwhile answers 503 with the reason or the user's own session, never another's, never
 * a crash; afterwards everyone's session is there as it was.
 */
async function outage (t: Test, byClient: Map<ClientName, [ChildServer, ChildServer]>, down: () => Promise<void>, up: () => Promise<void>): Promise<void> {
  const servers = CLIENTS.map((client) => (byClient.get(client) as [ChildServer, ChildServer])[0])
  const users = servers.flatMap((server, i) => ['ada', 'bob', 'cy'].map((name) => ({ name: `${name}-${CLIENTS[i] as string}`, server, jar: httpBrowser() })))
  for (const { name, server, jar } of users) t.equal((await jar.get(server, `/set/who/${name}`)).status, 200)
  const statuses = servers.map(() => new Map<number, number>())
  const problems: string[] = []
  let running = true
  const load = users.map(async ({ name, server, jar }) => {
    const counts = statuses[servers.indexOf(server)] as Map<number, number>
    while (running) {
      const answer = await jar.get(server, '/read').catch((error: Error) => ({ status: 0, body: error.message }))
      counts.set(answer.status, (counts.get(answer.status) ?? 0) + 1)
      if (answer.status === 200 && answer.body.data.who !== name) problems.push(`${name} got ${JSON.stringify(answer.body)}`)
      if (answer.status !== 200 && answer.status !== 503) problems.push(`${name}: status ${answer.status} ${JSON.stringify(answer.body)}`)
      if (answer.status === 503 && !/session store is unavailable/.test(String(answer.body?.message))) problems.push(`${name}: a 503 without the reason`)
      await sleep(5)
    }
  })
  await sleep(300)
  await down()
  await sleep(1500)
  const during = statuses.map((counts) => counts.get(503) ?? 0)
  await up()
  await sleep(1000)
  running = false
  await Promise.all(load)
  t.same(problems, [], 'only 200s with the user\'s own session, and 503s that say why')
  CLIENTS.forEach((client, i) => { t.ok((during[i] as number) > 0, `${client}: the outage was answered 503 (${during[i] as number} times)`) })
  for (const { name, server, jar } of users) {
    t.same((await jar.get(server, '/read')).body?.data, { who: name }, `${name}'s session is there once Redis is back`)
  }
  t.ok(servers.every((server) => server.alive()), 'no server stopped')
  for (const server of servers) t.notMatch(server.output(), /Unhandled|uncaught/i)
}

t.test('one Redis server', { skip }, async (t) => {
  const redis = await startRedis(t, { appendonly: true })
  const topology: Topology = { kind: 'standalone', port: redis.port }
  // The server processes start while the in-process suite runs.
  const starting = childServers(t, topology)
  for (const client of CLIENTS) await t.test(client, async (t) => { await suite(t, client, topology) })
  const servers = await starting
  await t.test('16 concurrent writes to one session over two processes: none lost', async (t) => { await concurrentWrites(t, servers) })
  await t.test('a restart under load: both clients', async (t) => {
    await outage(t, servers, async () => { await redis.stop() }, async () => { await redis.start() })
  })
})

t.test('a primary and a replica behind Sentinel, failing over', { skip }, async (t) => {
  const setup = await startRedisSentinel(t)
  const topology: Topology = { kind: 'sentinel', name: setup.name, sentinel: setup.sentinel }
  // The server processes start while the in-process suite runs.
  const starting = childServers(t, topology)
  for (const client of CLIENTS) await t.test(client, async (t) => { await suite(t, client, topology) })
  const servers = await starting
  await t.test('16 concurrent writes to one session over two processes: none lost', async (t) => { await concurrentWrites(t, servers) })
  await t.test('the primary dies under load and Sentinel promotes the replica: both clients', async (t) => {
    await outage(t, servers, async () => { await setup.failover() }, async () => {})
  })
})

t.test('a 3-master Redis Cluster', { skip }, async (t) => {
  const cluster = await startRedisCluster(t, 3)
  const topology: Topology = { kind: 'cluster', nodes: cluster.nodes }
  // The server processes start while the in-process suite runs.
  const starting = childServers(t, topology)
  for (const client of CLIENTS) await t.test(client, async (t) => { await suite(t, client, topology) })
  const servers = await starting
  await t.test('16 concurrent writes to one session over two processes: none lost', async (t) => { await concurrentWrites(t, servers) })
  await t.test('the whole cluster restarts under load: both clients', async (t) => {
    await outage(t, servers, async () => { await Promise.all(cluster.masters.map(async (master) => { await master.stop() })) }, async () => {
      await Promise.all(cluster.masters.map(async (master) => { await master.start() }))
      await cluster.healthy()
    })
  })
})
