// Self-test of test/helpers/servers.ts: the servers the store tests rely on come up on their own
// ports, answer real clients, survive a restart with their data and leave no process behind.
import t, { type Test } from 'tap'
import pg from 'pg'
import { createClient } from 'redis'
import { redisPing, serversMissing, startPostgres, startRedis } from './helpers/servers.js'

const redisSkip = serversMissing('redis')
const postgresSkip = serversMissing('postgres')

// Signal 0 only asks the kernel whether the pid exists; the helper waits for the reap, so a
// stopped server's pid must already be gone, not a zombie.
function gone (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

async function redisClient (t: Test, url: string) {
  const client = createClient({ url })
  // Failures surface through the rejected commands; without a listener they would crash the run.
  client.on('error', () => {})
  t.teardown(() => { if (client.isOpen) client.destroy() })
  await client.connect()
  return client
}

t.test('Redis answers PING and a real client, and stops without a trace', { skip: redisSkip }, async (t) => {
  const server = await startRedis(t)
  t.match(server.url, /^redis:\/\/127\.0\.0\.1:\d+$/)
  t.ok(await redisPing(server.port), 'raw PING gets +PONG')

  const client = await redisClient(t, server.url)
  t.equal(await client.ping(), 'PONG')
  await client.set('greeting', 'héllo')
  t.equal(await client.get('greeting'), 'héllo')
  await client.close()

  const other = await startRedis(t)
  t.not(other.port, server.port, 'each server gets its own port')
  t.not(other.dir, server.dir, 'and its own dir')

  const pid = server.pid
  await server.stop()
  t.ok(gone(pid), `pid ${pid} is gone after stop()`)
  t.notOk(await redisPing(server.port), 'nothing answers on the port')
  t.ok(await redisPing(other.port), 'the other server is untouched')
})

t.test('Redis with appendonly keeps its data across stop() and start()', { skip: redisSkip }, async (t) => {
  const server = await startRedis(t, { appendonly: true })
  const writer = await redisClient(t, server.url)
  await writer.set('session:1', 'before the outage')
  await writer.close()

  // A client left open through the outage, as a store's would be, must recover on its own.
  const survivor = await redisClient(t, server.url)
  const firstPid = server.pid
  await server.stop()
  t.ok(gone(firstPid), `pid ${firstPid} is gone after stop()`)
  t.notOk(await redisPing(server.port), 'the outage is real')

  await server.start()
  t.not(server.pid, firstPid, 'a new process')
  t.ok(await redisPing(server.port), 'on the same port')

  const reader = await redisClient(t, server.url)
  t.equal(await reader.get('session:1'), 'before the outage', 'data written before the restart')
  t.equal(await survivor.get('session:1'), 'before the outage', 'the open client reconnected')
})

t.test('PostgreSQL takes a password login, runs queries, and stops without a trace', { skip: postgresSkip }, async (t) => {
  const server = await startPostgres(t)
  const client = new pg.Client({ connectionString: server.connectionString })
  client.on('error', () => {})
  t.teardown(async () => { await client.end().catch(() => {}) })
  await client.connect()

  t.same((await client.query('select 1 as one')).rows, [{ one: 1 }])
  t.same((await client.query('select current_user as who')).rows, [{ who: 'session_test' }])
  await client.query('create table session (sid text primary key, sess jsonb not null, expire timestamptz not null)')
  await client.query("insert into session values ('abc', '{\"user\":\"ada\"}', now() + interval '1 hour')")
  t.same((await client.query('select sess from session where sid = $1', ['abc'])).rows, [{ sess: { user: 'ada' } }])

  const url = new URL(server.connectionString)
  url.password = 'wrong'
  const intruder = new pg.Client({ connectionString: url.href })
  intruder.on('error', () => {})
  await t.rejects(intruder.connect(), /password authentication failed/, 'the password is checked')
  await intruder.end().catch(() => {})

  await client.end()
  const pid = server.pid
  await server.stop()
  t.ok(gone(pid), `pid ${pid} is gone after stop()`)
})
