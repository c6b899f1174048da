// What revocation costs (issue 17): login, load and revoke of a user with 1 session and of one
// with 50,000, on RedisStore and on connect-redis (an express-session store), each on the
// harness's own redis-server; and cookie mode with a revocationStore against cookie mode
// without, read and write. In process, through fastify.inject(): the figures are the plugin's
// and the store's work, compared as ratios within one run, not HTTP throughput.
//   npm run build && node bench/revocation.js [--quick]
// And store mode's read and write of a logged-in session before this change (BENCH_BEFORE, default
// 5f3a687, built in a temporary git worktree under bench/.dist/) and after it, rounds interleaved.
// Writes bench/results/revocation.json (--quick: bench/results/tmp/revocation.json).
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import Fastify from 'fastify'
import { createClient } from 'redis'
import { RedisStore as ConnectRedisStore } from 'connect-redis'
import { distModule, median } from './common.js'
import { findRedisServer, redisCommand, startRedis } from './redis.js'

const quick = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1'
const MANY = quick ? 2_000 : 50_000
const REPEAT = quick ? 20 : 200
const ROUNDS = quick ? 2 : 7
const PER_ROUND = quick ? 200 : 2_000

// A snapshot of the build: `npm test` elsewhere rebuilds dist/ under a running benchmark.
// Inside bench/ (git-ignored .dist/), so that its imports find the project's node_modules.
mkdirSync(new URL('./.dist/', import.meta.url).pathname, { recursive: true })
const snapshot = mkdtempSync(new URL('./.dist/revocation-', import.meta.url).pathname)
cpSync(new URL('../dist/esm/', import.meta.url).pathname, snapshot, { recursive: true })
const { default: encryptedSession, Fernet, MemoryStore } = await import(distModule('index.js', snapshot))
const { RedisStore } = await import(distModule('lib/stores/redis.js', snapshot))
const KEY = Fernet.generateKey()

async function appWith (options) {
  const app = Fastify()
  const stored = options.store !== undefined || options.revocationStore !== undefined
  await app.register(encryptedSession, { key: KEY, cookie: { secure: false }, ...(stored ? { storeTimeout: 60_000 } : {}), ...options })
  app.get('/login/:id', async (request) => { request.session.login({ id: request.params.id }); return {} })
  app.get('/read', async (request) => ({ user: request.session.user ?? null }))
  app.get('/write', async (request) => { request.session.set('visits', (request.session.get('visits') ?? 0) + 1); return {} })
  await app.ready()
  return app
}

const cookieOf = (response) => /session=([^;]*)/.exec(response.headers['set-cookie'] ?? '')?.[1]

/** Milliseconds each of `times` sequential runs of `step` took. */
async function timed (times, step) {
  const took = []
  for (let i = 0; i < times; i++) {
    const start = process.hrtime.bigint()
    await step(i)
    took.push(Number(process.hrtime.bigint() - start) / 1e6)
  }
  return took
}

async function storeCosts (name, store, redisPort) {
  const app = await appWith({ store })
  const result = {}
  // Warm-up, so that the first measured case does not pay for the JIT and the script loads.
  for (let i = 0; i < REPEAT; i++) {
    const cookie = cookieOf(await app.inject('/login/warm-up'))
    await app.inject({ url: '/read', cookies: { session: cookie } })
    if (i % 4 === 0) await app.revokeSessions('warm-up')
  }
  for (const sessions of [1, MANY]) {
    const user = `user-${sessions}`
    for (let made = 1; made < sessions; made += 250) {
      await Promise.all(Array.from({ length: Math.min(250, sessions - made) }, async () => await app.encodeSession({ current_user: { id: user } })))
    }
    await redisCommand(redisPort, ['CONFIG', 'RESETSTAT'])
    await redisCommand(redisPort, ['SLOWLOG', 'RESET'])
    let cookie
    const login = await timed(REPEAT, async () => { cookie = cookieOf(await app.inject(`/login/${user}`)) })
    const load = await timed(REPEAT, async () => {
      const answer = await app.inject({ url: '/read', cookies: { session: cookie } })
      if (answer.json().user?.id !== user) throw new Error(`${name}: the session did not load`)
    })
    const revoke = await timed(Math.ceil(REPEAT / 4), async () => { await app.revokeSessions(user) })
    const stats = await redisCommand(redisPort, ['INFO', 'commandstats'])
    const slowest = [...stats.matchAll(/cmdstat_(\w+):calls=\d+,usec=\d+,usec_per_call=([\d.]+)/g)]
      .map(([, command, usec]) => ({ command, usec: Number(usec) })).sort((a, b) => b.usec - a.usec)[0]
    result[sessions] = {
      loginMs: median(login),
      loadMs: median(load),
      revokeMs: median(revoke),
      slowestRedisCommand: slowest,
      redisCommandsOver1ms: await redisCommand(redisPort, ['SLOWLOG', 'LEN'])
    }
    console.log(`${name}, ${sessions} session(s) of the user:`, JSON.stringify(result[sessions]))
  }
  await app.close()
  const ratio = (field) => Number((result[MANY][field] / result[1][field]).toFixed(2))
  result.ratios = { login: ratio('loginMs'), load: ratio('loadMs'), revoke: ratio('revokeMs') }
  console.log(`${name}: ${MANY} vs 1 session(s), ratio of medians:`, JSON.stringify(result.ratios))
  return result
}

/** Requests per second of each variant on one route, rounds interleaved; medians. */
async function cookieModeCosts (variants) {
  const apps = {}
  for (const [name, options] of Object.entries(variants)) {
    const app = await appWith(options)
    apps[name] = { app, cookie: cookieOf(await app.inject('/login/ada')) }
  }
  const result = {}
  for (const route of ['read', 'write']) {
    const rates = Object.fromEntries(Object.keys(apps).map((name) => [name, []]))
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, { app, cookie }] of Object.entries(apps)) {
        const start = process.hrtime.bigint()
        for (let i = 0; i < PER_ROUND; i++) await app.inject({ url: `/${route}`, cookies: { session: cookie } })
        rates[name].push(PER_ROUND / (Number(process.hrtime.bigint() - start) / 1e9))
      }
    }
    result[route] = Object.fromEntries(Object.entries(rates).map(([name, list]) => [name, Math.round(median(list))]))
    result[route].ratios = Object.fromEntries(Object.keys(apps).filter((name) => name !== 'without').map((name) => [name, Number((result[route][name] / result[route].without).toFixed(2))]))
    console.log(`cookie mode, /${route}, requests/s (median of ${ROUNDS}):`, JSON.stringify(result[route]))
  }
  for (const { app } of Object.values(apps)) await app.close()
  return result
}

/** The build of an earlier commit, in a worktree of its own; undefined (with why) when it cannot be built. */
function buildOf (commit) {
  const dir = new URL(`./.dist/before-${commit}`, import.meta.url).pathname
  try {
    execFileSync('git', ['worktree', 'add', '--detach', dir, commit], { stdio: 'ignore' })
    symlinkSync(new URL('../node_modules', import.meta.url).pathname, path.join(dir, 'node_modules'))
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: dir, stdio: 'ignore' })
    return { dir, entry: path.join(dir, 'dist/esm') }
  } catch (error) {
    return { dir, failed: error.message }
  }
}

/** Store mode, a logged-in session on RedisStore: /read and /write, before and after, requests/s. */
async function storeBeforeAfter (client, before) {
  const builds = { before: before.entry, after: snapshot }
  const apps = {}
  for (const [name, dir] of Object.entries(builds)) {
    const { default: plugin } = await import(distModule('index.js', dir))
    const { RedisStore: Store } = await import(distModule('lib/stores/redis.js', dir))
    const app = Fastify()
    await app.register(plugin, { key: KEY, cookie: { secure: false }, store: new Store({ client, prefix: `bench:${name}:` }) })
    app.get('/login/:id', async (request) => { request.session.login({ id: request.params.id }); return {} })
    app.get('/read', async (request) => ({ user: request.session.user ?? null }))
    app.get('/write', async (request) => { request.session.set('visits', (request.session.get('visits') ?? 0) + 1); return {} })
    await app.ready()
    apps[name] = { app, cookie: cookieOf(await app.inject('/login/ada')) }
  }
  const result = {}
  for (const route of ['read', 'write']) {
    const rates = { before: [], after: [] }
    for (let round = 0; round < ROUNDS; round++) {
      for (const name of round % 2 === 0 ? ['before', 'after'] : ['after', 'before']) {
        const { app, cookie } = apps[name]
        const start = process.hrtime.bigint()
        for (let i = 0; i < PER_ROUND / 2; i++) await app.inject({ url: `/${route}`, cookies: { session: cookie } })
        rates[name].push(PER_ROUND / 2 / (Number(process.hrtime.bigint() - start) / 1e9))
      }
    }
    result[route] = { before: Math.round(median(rates.before)), after: Math.round(median(rates.after)) }
    result[route].ratio = Number((result[route].after / result[route].before).toFixed(2))
    console.log(`store mode (RedisStore), logged in, /${route}, requests/s before and after (median of ${ROUNDS}):`, JSON.stringify(result[route]))
  }
  for (const { app } of Object.values(apps)) await app.close()
  return result
}

const found = findRedisServer()
const results = { quick, many: MANY, node: process.version, when: new Date().toISOString() }
let redis
try {
  if (found.path === null) {
    results.redis = { skipped: found.reason }
    console.log(`Redis variants skipped: ${found.reason}`)
  } else {
    redis = await startRedis(found.path)
    const client = createClient({ url: `redis://127.0.0.1:${redis.port}` })
    await client.connect()
    results.redisStore = await storeCosts('RedisStore', new RedisStore({ client, prefix: 'bench:rev:' }), redis.port)
    results.connectRedis = await storeCosts('connect-redis', new ConnectRedisStore({ client, prefix: 'bench:crev:' }), redis.port)
    results.cookieMode = await cookieModeCosts({
      without: {},
      withMemoryStore: { revocationStore: new MemoryStore() },
      withRedisStore: { revocationStore: new RedisStore({ client, prefix: 'bench:cookie:' }) }
    })
    const before = buildOf(process.env.BENCH_BEFORE ?? '5f3a687')
    if (before.failed === undefined) results.storeBeforeAfter = await storeBeforeAfter(client, before)
    else results.storeBeforeAfter = { skipped: before.failed }
    execFileSync('git', ['worktree', 'remove', '--force', before.dir], { stdio: 'ignore' })
    client.destroy()
  }
} finally {
  await redis?.stop()
  rmSync(snapshot, { recursive: true, force: true })
}
const dir = new URL(quick ? './results/tmp/' : './results/', import.meta.url).pathname
mkdirSync(dir, { recursive: true })
writeFileSync(path.join(dir, 'revocation.json'), JSON.stringify(results, null, 2) + '\n')
