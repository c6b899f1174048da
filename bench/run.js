#!/usr/bin/env node
// The benchmark: `npm run bench` (which builds first), or `node bench/run.js` on a built tree.
//
//   --quick (or BENCH_QUICK=1)  tiny durations, a smoke run of everything (seconds)
//   --rounds N --duration S --warmup S --connections N --memory-requests N --micro-ms MS --proxy-ms MS
//   --spread N                 sessions per connection on the store variants' write-many route
//   --only http,micro,proxy,memory   --seed N   --out DIR
//   --no-gate                  measure even while other processes keep the CPU busy
//   --variants a,b             only these HTTP variants (and bare)
//   --cluster                  add the variants on a 3-master Redis Cluster, which no run measures
//                              unless asked (naming one in --variants asks for it too)
//
// Each server variant runs in its own child process (bench/server.js) on 127.0.0.1; the load
// comes from autocannon in this process. Every round starts every variant once, in a shuffled
// order, and runs its routes in a rotating order; the tables give medians over rounds. The run
// fails (exit code 1) if any request errors, times out, answers non-2xx or with an unexpected
// body, or if any variant does not behave as a session store should. The store variants on
// Redis use a redis-server the harness starts (bench/redis.js), the cluster variants a Redis
// Cluster it starts (bench/redis-cluster.js); without one they are skipped, with the reason
// printed and recorded.
import { execFileSync, fork } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { EXPECTED_BODY, FASTIFY_SESSION_VARIANTS, REDIS_CLUSTER_VARIANTS, REDIS_PREFIX, REDIS_VARIANTS, SESSION_ROUTES, SPREAD_ROUTE, STORE_VARIANTS, USER, VARIANTS, VISITS, median, pathOf, prng, routesOf, sessionData, shuffle, storeWriteCheck } from './common.js'
import { NodeFernet } from './node-fernet.js'
import { QuietGate, cpuSnapshot, foreignShare } from './cpu.js'
import { cookiePair, get, load as loadWith, problems, startServer as startServerWith } from './harness.js'
import { findRedisCli, findRedisServer, startRedis } from './redis.js'
import { startRedisCluster } from './redis-cluster.js'
import { computeRatios, svgChart, textReport } from './report.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..')

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    'memory-requests': { type: 'string' },
    spread: { type: 'string' },
    'micro-ms': { type: 'string' },
    'proxy-ms': { type: 'string' },
    only: { type: 'string' },
    variants: { type: 'string' },
    seed: { type: 'string' },
    out: { type: 'string' },
    'no-gate': { type: 'boolean', default: false },
    cluster: { type: 'boolean', default: false }
  },
  strict: true
})

const quick = args.quick || /^(1|true|yes)$/i.test(process.env.BENCH_QUICK ?? '')
const num = (value, fallback) => value === undefined ? fallback : Number(value)
const settings = {
  quick,
  rounds: num(args.rounds, quick ? 2 : 5),
  duration: num(args.duration, quick ? 0.3 : 2.5),
  warmup: num(args.warmup, quick ? 0.1 : 0.5),
  connections: num(args.connections, 10),
  memoryRequests: num(args['memory-requests'], quick ? 3000 : 100_000),
  // At the write rates seen here (at most ~500 a second per connection), 500 sessions per
  // connection bring each one back after a second or more; the report states the actual gap.
  spread: num(args.spread, quick ? 20 : 500),
  microMs: num(args['micro-ms'], quick ? 15 : 150),
  microWarmupMs: quick ? 10 : 100,
  proxyMs: num(args['proxy-ms'], quick ? 20 : 200),
  seed: num(args.seed, Date.now() % 1_000_000),
  only: (args.only ?? 'http,micro,proxy,memory').split(',').map((s) => s.trim()),
  // Some of the HTTP variants only (bare is always measured), for a focused comparison.
  variants: args.variants === undefined ? undefined : args.variants.split(',').map((s) => s.trim()),
  cluster: args.cluster,
  out: path.resolve(args.out ?? path.join(here, 'results', quick ? 'tmp' : '')),
  // The quiet gate (bench/cpu.js): off in quick mode, whose numbers mean nothing anyway.
  gate: !quick && !args['no-gate']
}
for (const [name, value] of Object.entries(settings)) {
  if (typeof value === 'number' && !(value >= 0)) throw new TypeError(`bench: --${name} must be a number, 0 or more`)
}
// A misspelt name would otherwise leave a run of bare alone that looks like a success.
for (const name of settings.variants ?? []) {
  if (name !== 'bare' && !VARIANTS.includes(name)) throw new TypeError(`bench: --variants: no variant ${JSON.stringify(name)} (there are ${VARIANTS.join(', ')})`)
}

/**
 * The HTTP variants of this run, bare first: all but the cluster ones by default; --variants
 * narrows that; --cluster adds the cluster variants to either.
 */
const httpVariants = ['bare', ...VARIANTS].filter((variant) => {
  if (variant === 'bare') return true
  if (REDIS_CLUSTER_VARIANTS.includes(variant)) return settings.cluster || settings.variants?.includes(variant) === true
  return settings.variants === undefined || settings.variants.includes(variant)
})

// A hard bound on the whole run, whatever happens: children are ours and are killed on exit.
const children = new Set()
const watchdogMs = quick ? 240_000 : 2_400_000
setTimeout(() => {
  console.error(`bench: still running after ${watchdogMs / 1000}s; giving up`)
  for (const child of children) child.kill('SIGKILL')
  process.exit(1)
}, watchdogMs).unref()
process.on('exit', () => { for (const child of children) child.kill('SIGKILL') })

const gate = new QuietGate({ enabled: settings.gate, budgetMs: 60_000, sampleMs: 150 })

const failures = []
const fail = (message) => {
  failures.push(message)
  console.error(`  FAIL: ${message}`)
}
const log = (message) => console.error(message)

function gitCommit () {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'index.ts', 'lib'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    return dirty ? `${commit}+uncommitted-lib-changes` : commit
  } catch {
    return 'unknown'
  }
}

function packageVersion (name) {
  try {
    return JSON.parse(readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')).version
  } catch {
    return null
  }
}

const machine = {
  cpuModel: os.cpus()[0]?.model?.trim() ?? 'unknown CPU',
  cores: os.cpus().length,
  availableParallelism: os.availableParallelism?.() ?? os.cpus().length,
  totalMemoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
  node: process.version,
  v8: process.versions.v8,
  openssl: process.versions.openssl,
  platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (default)',
  commit: gitCommit()
}
const versions = Object.fromEntries(['fastify', '@fastify/cookie', '@fastify/secure-session', '@fastify/session', 'connect-redis', 'redis', 'ioredis', 'sodium-native', 'iron-session', 'iron-webcrypto', 'fernet', 'autocannon']
  .map((name) => [name, packageVersion(name)]))

// The code measured: a private copy of dist/esm, taken once at the start (see pluginEntry()).
function snapshotDist () {
  const source = path.join(root, 'dist', 'esm')
  const target = path.join(here, '.dist')
  if (!existsSync(path.join(source, 'index.js'))) throw new Error('bench: dist/esm/index.js is missing; run `npm run build` first (`npm run bench` does)')
  rmSync(target, { recursive: true, force: true })
  cpSync(source, target, { recursive: true })
  const hash = createHash('sha256')
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(full)
      else if (entry.name.endsWith('.js')) hash.update(entry.name).update(readFileSync(full))
    }
  }
  walk(target)
  if (!existsSync(path.join(target, 'index.js')) || !existsSync(path.join(target, 'lib', 'fernet', 'fernet.js'))) {
    throw new Error('bench: the copy of dist/esm is incomplete (was a build running?); run the benchmark again')
  }
  return { dir: target, sha256: hash.digest('hex').slice(0, 16) }
}
const dist = snapshotDist()
process.env.BENCH_DIST = dist.dir
machine.buildSha256 = dist.sha256

// The exact text replaced in the copy's lib/session.js, and what replaces it.
const PROXY_RETURN = 'return new Proxy(this, propertyAccess);'
const NO_PROXY_RETURN = 'return this;'

/**
 * A second copy of the snapshot whose Session constructor returns the instance instead of the
 * Proxy around it: the one difference between ours and ours-noproxy. Bench only, git-ignored,
 * never in dist/. The patch must apply exactly once, or the run stops.
 */
function noProxyCopy (source) {
  const target = path.join(here, '.dist-noproxy')
  rmSync(target, { recursive: true, force: true })
  cpSync(source, target, { recursive: true })
  const file = path.join(target, 'lib', 'session.js')
  const text = readFileSync(file, 'utf8')
  const found = text.split(PROXY_RETURN).length - 1
  if (found !== 1) throw new Error(`bench: expected "${PROXY_RETURN}" once in lib/session.js, found it ${found} times; update noProxyCopy() to the new code`)
  writeFileSync(file, text.replace(PROXY_RETURN, NO_PROXY_RETURN))
  return { dir: target, patch: { file: 'lib/session.js', from: PROXY_RETURN, to: NO_PROXY_RETURN } }
}
const noProxy = noProxyCopy(dist.dir)
process.env.BENCH_DIST_NOPROXY = noProxy.dir

// Keys for this run: one per variant family, shared by the harness and the servers.
const keys = {
  BENCH_KEY: NodeFernet.generateKey(),
  BENCH_SECURE_KEY: randomBytes(32).toString('base64'),
  BENCH_IRON_PASSWORD: randomBytes(32).toString('hex'),
  BENCH_SESSION_SECRET: randomBytes(32).toString('hex')
}

// The Redis of the store variants: started only when the HTTP phase runs, stopped at the end.
let redis = null
const redisInfo = { needed: settings.only.includes('http') }
if (redisInfo.needed) {
  const found = findRedisServer()
  if (found.path === null) {
    redisInfo.skipped = found.reason
    console.error(`bench: ${REDIS_VARIANTS.join(' and ')} skipped: ${redisInfo.skipped}`)
  } else {
    try {
      redis = await startRedis(found.path)
      Object.assign(redisInfo, { executable: found.path, version: redis.version, port: redis.port })
      console.error(`bench: redis-server ${redis.version} on 127.0.0.1:${redis.port} (pid ${redis.pid})`)
    } catch (error) {
      redisInfo.skipped = `redis-server did not start: ${error.message}`
      console.error(`bench: ${REDIS_VARIANTS.join(' and ')} skipped: ${redisInfo.skipped}`)
    }
  }
}
// The Redis Cluster of the cluster variants: started only when one of them is to run.
let cluster = null
const clusterInfo = { needed: settings.only.includes('http') && httpVariants.some((v) => REDIS_CLUSTER_VARIANTS.includes(v)) }
if (clusterInfo.needed) {
  const server = findRedisServer()
  const cli = server.path === null ? null : findRedisCli(server.path)
  const reason = server.reason ?? cli.reason
  if (reason !== undefined) {
    clusterInfo.skipped = reason
  } else {
    try {
      cluster = await startRedisCluster(server.path, cli.path)
      Object.assign(clusterInfo, { executable: server.path, cli: cli.path, version: cluster.version, masters: cluster.size, ports: cluster.ports })
      console.error(`bench: Redis Cluster of ${cluster.size} masters (redis-server ${cluster.version}) on 127.0.0.1:${cluster.ports.join(',')} (pids ${cluster.pids.join(', ')})`)
    } catch (error) {
      clusterInfo.skipped = `the Redis Cluster did not start: ${error.message}`
    }
  }
  if (clusterInfo.skipped !== undefined) console.error(`bench: ${httpVariants.filter((v) => REDIS_CLUSTER_VARIANTS.includes(v)).join(', ')} skipped: ${clusterInfo.skipped}`)
}
// The orderly stop; should the run end otherwise (watchdog, a throw), redis.js's exit hook
// kills the servers and removes their directories.
const stopRedis = async () => {
  const running = [redis, cluster]
  redis = null
  cluster = null
  await Promise.all(running.map((r) => r?.stop()))
}

// ---------------------------------------------------------------- servers

async function startServer (variant, { execArgv = [] } = {}) {
  return await startServerWith(variant, {
    execArgv,
    env: {
      ...keys,
      ...(redis === null ? {} : { BENCH_REDIS_URL: redis.url }),
      ...(cluster === null ? {} : { BENCH_REDIS_CLUSTER_NODES: JSON.stringify(cluster.rootNodes) })
    },
    children,
    maxLifetimeMs: quick ? 120_000 : 600_000,
    onUnexpectedExit: fail
  })
}

/** The processes whose CPU is the benchmark's own: this one, the server, and Redis (every node). */
const ownPids = (server) => [process.pid, server.pid, ...(redis === null ? [] : [redis.pid]), ...(cluster?.pids ?? [])]

const load = (url, options) => loadWith(url, { connections: settings.connections, ...options })

const isStore = (variant) => STORE_VARIANTS.includes(variant)

/** The text a Fernet token of our id holds, under the run's key; undefined if it opens nothing. */
function openIdToken (cookie) {
  try {
    return new NodeFernet(keys.BENCH_KEY).decrypt(cookie.slice('session='.length)).toString('utf8')
  } catch {
    return undefined
  }
}

/**
 * Mints a session cookie through the variant's own /login route and checks that the variant
 * behaves: the cookie reads back, write re-issues it, untouched and read do not (recorded).
 *
 * In store mode the store holds the data, so /write changes the store, not the cookie, and
 * "re-issues" means: a second /write with the same cookie counts on from the first (the store
 * changed), and a Set-Cookie came. For ours it carries a token of the same session id (the
 * harness opens both with the key); @fastify/session sets the same signed id again (it does on
 * every request, rolling being on by default). The load then uses one session per connection
 * (`cookies`), minted through /login as well: one browser's requests follow one another; for
 * SPREAD_ROUTE, `settings.spread` sessions per connection, visited in turn.
 */
async function prepareVariant (variant, server, route) {
  const info = { cookie: undefined, setCookie: {} }
  if (variant === 'bare') {
    // The bare client sends a cookie of the same size as ours, so that only session work differs.
    info.cookie = `session=${new NodeFernet(keys.BENCH_KEY).encrypt(JSON.stringify(sessionData()))}`
    const r = await get(`${server.url}/bare`, info.cookie)
    if (r.status !== 200 || r.body !== EXPECTED_BODY.bare) throw new Error(`bare: GET /bare answered ${r.status} ${r.body}`)
    return info
  }
  const login = async () => {
    const r = await get(`${server.url}/login`)
    const sessionCookie = r.setCookies.find((c) => c.startsWith('session='))
    if (r.status !== 200 || sessionCookie === undefined) throw new Error(`${variant}: /login gave ${r.status} without a session cookie`)
    return cookiePair(sessionCookie)
  }
  info.cookie = await login()
  info.cookieBytes = info.cookie.length
  const anonymous = await get(`${server.url}/read`)
  if (anonymous.status !== 401) throw new Error(`${variant}: /read without a cookie answered ${anonymous.status}, not 401`)
  let written
  for (const route of SESSION_ROUTES) {
    const r = await get(`${server.url}/${route}`, info.cookie)
    if (r.status !== 200 || r.body !== EXPECTED_BODY[route]) throw new Error(`${variant}: /${route} with the minted cookie answered ${r.status} ${r.body}`)
    const sets = r.setCookies.find((c) => c.startsWith('session='))
    info.setCookie[route] = sets !== undefined ? 'yes' : 'no'
    if (route === 'write') {
      if (sets === undefined) throw new Error(`${variant}: /write did not re-issue the session cookie`)
      written = cookiePair(sets)
    }
  }
  if (!isStore(variant)) return info
  const again = await get(`${server.url}/write`, info.cookie)
  const expected = JSON.stringify({ name: USER.name, visits: VISITS + 2 })
  if (again.status !== 200 || again.body !== expected) throw new Error(`${variant}: a second /write with the first cookie answered ${again.status} ${again.body}, not ${expected}: the store did not keep the first write`)
  if (FASTIFY_SESSION_VARIANTS.includes(variant)) {
    if (written !== info.cookie) throw new Error(`${variant}: /write set a cookie with another session id`)
    info.reissue = 'same signed id, set on every request (rolling: true)'
  } else {
    const id = openIdToken(info.cookie)
    if (id === undefined || !/^[A-Za-z0-9_-]{22}$/.test(id)) throw new Error(`${variant}: the cookie is no Fernet token of a session id`)
    // Within the second of the login, the same token again (same id, same time, sealed once).
    if (openIdToken(written) !== id) throw new Error(`${variant}: /write did not re-issue a token of the same session id`)
    info.reissue = 'a token of the same id with the time of the change, on a change only (sealed once per session and second)'
  }
  info.cookies = []
  for (let i = 0; i < settings.connections; i++) {
    if (route !== SPREAD_ROUTE) {
      info.cookies.push(await login())
      continue
    }
    const mine = []
    // Ten logins at a time: minting thousands one by one would take longer than the measurement.
    while (mine.length < settings.spread) mine.push(...await Promise.all(Array.from({ length: Math.min(10, settings.spread - mine.length) }, login)))
    info.cookies.push(mine)
  }
  return info
}

/**
 * The Redis a variant stores its sessions in, as the checks around a measurement use it (the
 * cluster's commands go to every master), or null for a variant without Redis.
 */
function redisOf (variant) {
  if (REDIS_VARIANTS.includes(variant)) {
    return {
      flushAll: async () => { await redis.command(['FLUSHALL']) },
      dbSize: async () => await redis.command(['DBSIZE']),
      keys: async (pattern) => await redis.command(['KEYS', pattern])
    }
  }
  if (REDIS_CLUSTER_VARIANTS.includes(variant)) {
    return {
      flushAll: async () => { await cluster.flushAll() },
      dbSize: async () => (await cluster.dbSizes()).reduce((a, b) => a + b, 0),
      dbSizes: async () => await cluster.dbSizes(),
      keys: async (pattern) => await cluster.keys(pattern)
    }
  }
  return null
}

// ---------------------------------------------------------------- phases

async function runHttp () {
  const skipped = {}
  const serverVariants = httpVariants.filter((variant) => {
    if (REDIS_VARIANTS.includes(variant) && redis === null) {
      skipped[variant] = redisInfo.skipped
      return false
    }
    if (REDIS_CLUSTER_VARIANTS.includes(variant) && cluster === null) {
      skipped[variant] = clusterInfo.skipped
      return false
    }
    return true
  })
  const samples = new Map()
  const setCookie = new Map()
  const reissue = new Map()
  const key = (variant, route) => `${variant}|${route}`
  for (const v of serverVariants) for (const r of routesOf(v)) samples.set(key(v, r), [])
  const random = prng(settings.seed)
  const orders = []
  for (let round = 0; round < settings.rounds; round++) {
    const order = shuffle(serverVariants, random)
    orders.push(order)
    log(`HTTP round ${round + 1}/${settings.rounds}: ${order.join(', ')}`)
    for (const variant of order) {
      const routes = routesOf(variant)
      const rotated = routes.map((_, i) => routes[(i + round) % routes.length])
      // A fresh server process for every route: what one route leaves behind (the tokens a
      // write route issues fill ours' verified-token cache, for one) must not change the next
      // route's numbers. The memory phase measures a server that has seen many sessions.
      for (const route of rotated) {
        let server
        try {
          // An empty Redis for every measurement (on top of a key prefix per variant): no
          // variant reads, scans or evicts among another's keys.
          const store = redisOf(variant)
          if (store !== null) {
            await store.flushAll()
            const left = await store.dbSize()
            if (left !== 0) throw new Error(`Redis still holds ${left} keys after FLUSHALL`)
          }
          server = await startServer(variant)
          const info = await prepareVariant(variant, server, route)
          setCookie.set(key(variant, route), info.setCookie[route])
          if (info.reissue !== undefined) reissue.set(variant, info.reissue)
          const url = `${server.url}/${pathOf(route)}`
          const options = info.cookies === undefined
            ? { cookie: info.cookie, expectBody: EXPECTED_BODY[route] }
            : { cookies: info.cookies, makeCheck: pathOf(route) === 'write' ? storeWriteCheck : () => (body) => body === EXPECTED_BODY[route] }
          const warm = await load(url, { ...options, duration: settings.warmup })
          let measured
          for (let attempt = 0; ; attempt++) {
            await gate.wait(ownPids(server))
            const snapshot = cpuSnapshot(ownPids(server))
            measured = await load(url, { ...options, duration: settings.duration })
            measured.foreignCpu = foreignShare(snapshot)
            measured.attempts = attempt + 1
            if (problems(measured).length || !gate.retry(measured.foreignCpu, attempt, settings.duration * 1000)) break
            log(`  ${variant.padEnd(21)} /${route.padEnd(10)} measured again: other processes used ${(measured.foreignCpu * 100).toFixed(0)}% of the CPU`)
          }
          if (store !== null) {
            // What the measurement left in Redis, and that it is all under the variant's prefix.
            measured.redisKeys = await store.dbSize()
            // On the cluster, how the sessions spread over the masters: all on one would mean
            // the keys share a hash slot, and the cluster measured one server's work.
            if (store.dbSizes !== undefined) measured.redisKeysPerMaster = await store.dbSizes()
            const own = (await store.keys(`${REDIS_PREFIX[variant]}*`)).length
            if (own !== measured.redisKeys) fail(`HTTP round ${round + 1} ${variant} /${route}: ${measured.redisKeys - own} Redis keys outside the prefix ${REDIS_PREFIX[variant]}`)
          }
          const bad = [...problems(warm), ...problems(measured)]
          if (bad.length) fail(`HTTP round ${round + 1} ${variant} /${route}: ${bad.join(', ')}`)
          samples.get(key(variant, route))[round] = bad.length ? null : measured
          log(`  ${variant.padEnd(21)} /${route.padEnd(10)} ${Math.round(measured.reqPerSec).toString().padStart(7)} req/s  p99 ${measured.p99} ms`)
        } catch (error) {
          fail(`HTTP round ${round + 1} ${variant} /${route}: ${error.message}`)
        } finally {
          await server?.stop()
        }
      }
    }
  }
  const cells = []
  for (const variant of serverVariants) {
    for (const route of routesOf(variant)) {
      const rounds = Array.from({ length: settings.rounds }, (_, i) => samples.get(key(variant, route))[i] ?? null)
      const valid = rounds.filter((r) => r !== null)
      // Rounds measured while other processes used more than the gate allows are left out of
      // the medians, as long as at least half of the rounds (and no fewer than 2) stay clean.
      const clean = valid.filter((r) => !(r.foreignCpu > gate.maxForeign))
      const useClean = gate.enabled && clean.length >= Math.max(2, Math.ceil(settings.rounds / 2))
      const ok = useClean ? clean : valid
      for (const r of valid) r.used = ok.includes(r)
      cells.push({
        variant,
        route,
        reqPerSec: median(ok.map((r) => r.reqPerSec)),
        p99: median(ok.map((r) => r.p99)),
        p50: median(ok.map((r) => r.p50)),
        foreignCpuMax: Math.max(0, ...ok.map((r) => r.foreignCpu ?? 0)),
        roundsUsed: ok.length,
        setCookie: setCookie.get(key(variant, route)) ?? (variant === 'bare' ? '' : 'n/a'),
        sessions: route === SPREAD_ROUTE ? `${settings.spread} sessions per connection, visited in turn` : isStore(variant) ? 'one per connection' : 'one for all',
        // How long a session waited between two of its writes, at the median rate.
        revisitSeconds: route === SPREAD_ROUTE ? settings.spread * settings.connections / median(ok.map((r) => r.reqPerSec)) : undefined,
        rounds
      })
    }
  }
  return { orders, cells, skipped, reissue: Object.fromEntries(reissue) }
}

async function runMicro () {
  const child = fork(path.join(here, 'micro.js'), [], {
    cwd: root,
    execArgv: [],
    env: {
      ...process.env,
      BENCH_MICRO: JSON.stringify({ rounds: settings.rounds, cellMs: settings.microMs, warmupMs: settings.microWarmupMs, seed: settings.seed, gate: settings.gate })
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  children.add(child)
  let message
  child.on('message', (m) => { message = m })
  const { code, signal } = await new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  children.delete(child)
  if (code !== 0 || message?.type !== 'micro') throw new Error(`micro benchmark exited with code ${code}, signal ${signal}`)
  for (const cell of message.results) {
    if (!(cell.opsPerSec > 0)) fail(`micro ${cell.impl} ${cell.op} ${cell.size} B ×${cell.batch}: no result`)
  }
  return message
}

/** The Proxy's cost in ns per operation (bench/proxy-micro.js), in a child process of its own. */
async function runProxy () {
  const child = fork(path.join(here, 'proxy-micro.js'), [], {
    cwd: root,
    execArgv: [],
    env: {
      ...process.env,
      BENCH_PROXY: JSON.stringify({ rounds: settings.rounds, cellMs: settings.proxyMs, warmupMs: settings.microWarmupMs * 2, seed: settings.seed, gate: settings.gate })
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  children.add(child)
  let message
  child.on('message', (m) => { message = m })
  const { code, signal } = await new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  children.delete(child)
  if (code !== 0 || message?.type !== 'proxy') throw new Error(`proxy micro benchmark exited with code ${code}, signal ${signal}`)
  for (const cell of message.results) {
    if (!(cell.nsPerOp > 0)) fail(`proxy micro ${cell.build} ${cell.op}: no result`)
  }
  return { ...message, patch: noProxy.patch }
}

async function runMemory () {
  const total = settings.memoryRequests
  log(`Memory: minting ${total.toLocaleString('en-US')} distinct session tokens`)
  const fernet = new NodeFernet(keys.BENCH_KEY)
  const cookies = new Array(total)
  for (let i = 0; i < total; i++) cookies[i] = `session=${fernet.encrypt(JSON.stringify(sessionData(100_000 + i, i % 1000)))}`
  const server = await startServer('ours', { execArgv: ['--expose-gc'] })
  try {
    const check = await get(`${server.url}/read`, cookies[0])
    if (check.status !== 200 || check.body !== EXPECTED_BODY.read) throw new Error(`memory: /read with a minted token answered ${check.status} ${check.body}`)
    const memory = async (gc) => JSON.parse((await get(`${server.url}/__mem${gc ? '?gc=1' : ''}`)).body)
    await gate.wait(ownPids(server))
    const baseline = (await memory(true)).afterGc
    let next = 0
    let served = 0
    let unexpected = 0
    log(`Memory: sending ${total.toLocaleString('en-US')} requests, each with its own token`)
    const snapshot = cpuSnapshot(ownPids(server))
    const result = await load(server.url, {
      amount: total,
      requests: [{
        method: 'GET',
        path: '/read',
        setupRequest: (request) => {
          const cookie = cookies[next % total]
          next++
          return { ...request, headers: { ...request.headers, cookie } }
        },
        onResponse: (status, body) => {
          served++
          if (status !== 200 || body !== EXPECTED_BODY.read) unexpected++
        }
      }]
    })
    const foreignCpu = foreignShare(snapshot)
    const after = (await memory(false)).before
    const afterGc = (await memory(true)).afterGc
    const bad = problems(result)
    if (unexpected) bad.push(`${unexpected} unexpected answers`)
    if (result.ok < total) bad.push(`only ${result.ok} of ${total} requests answered 2xx`)
    // Then the HTTP phase's read cell again, one cookie over and over, on this server that has
    // now seen many sessions: a cache that degrades when full shows here.
    log('Memory: /read with one cookie on the same server, after the distinct sessions')
    const options = { cookie: cookies[0], expectBody: EXPECTED_BODY.read }
    const warm = await load(`${server.url}/read`, { ...options, duration: settings.warmup })
    await gate.wait(ownPids(server))
    const snapshotAfter = cpuSnapshot(ownPids(server))
    const readAfter = await load(`${server.url}/read`, { ...options, duration: settings.duration })
    readAfter.foreignCpu = foreignShare(snapshotAfter)
    bad.push(...problems(warm), ...problems(readAfter))
    if (bad.length) fail(`memory run: ${bad.join(', ')}`)
    return {
      route: '/read',
      requests: result.requests,
      served,
      distinctTokens: Math.min(next, total),
      reqPerSec: result.reqPerSec,
      p99: result.p99,
      foreignCpu,
      readOneCookieAfter: readAfter,
      baseline,
      after,
      afterGc
    }
  } finally {
    await server.stop()
  }
}

/**
 * Store mode's memory: a server with store: new MemoryStore() (its defaults: at most 100,000
 * sessions and 64 MiB of data) receives `total` requests that each create a session (/login
 * without a cookie: a new id, a record in the store, a Set-Cookie), then reports its memory
 * and the store's size.
 */
async function runMemoryStore () {
  const total = settings.memoryRequests
  const server = await startServer('ours-memory', { execArgv: ['--expose-gc'] })
  try {
    const memory = async (gc) => JSON.parse((await get(`${server.url}/__mem${gc ? '?gc=1' : ''}`)).body)
    // The variant works before anything is measured: a login's cookie reads back.
    const login = await get(`${server.url}/login`)
    const cookie = login.setCookies.find((c) => c.startsWith('session='))
    const read = cookie === undefined ? undefined : await get(`${server.url}/read`, cookiePair(cookie))
    if (login.status !== 200 || read?.status !== 200 || read.body !== EXPECTED_BODY.read) throw new Error(`memory store: /login then /read answered ${login.status}, ${read?.status} ${read?.body}`)
    await gate.wait(ownPids(server))
    const baselineReport = await memory(true)
    const baseline = baselineReport.afterGc
    let unexpected = 0
    let withoutCookie = 0
    log(`Memory (store): sending ${total.toLocaleString('en-US')} requests to /login without a cookie, each creating a session in a MemoryStore`)
    const snapshot = cpuSnapshot(ownPids(server))
    const result = await load(server.url, {
      amount: total,
      requests: [{
        method: 'GET',
        path: '/login',
        onResponse: (status, body, _context, headers) => {
          if (status !== 200 || body !== EXPECTED_BODY.untouched) unexpected++
          const setCookie = Object.entries(headers).find(([name]) => name.toLowerCase() === 'set-cookie')?.[1]
          if (![setCookie ?? []].flat().some((c) => String(c).startsWith('session='))) withoutCookie++
        }
      }]
    })
    const foreignCpu = foreignShare(snapshot)
    const afterReport = await memory(false)
    const afterGcReport = await memory(true)
    const bad = problems(result)
    if (unexpected) bad.push(`${unexpected} unexpected answers`)
    if (withoutCookie) bad.push(`${withoutCookie} answers without a session cookie`)
    if (result.ok < total) bad.push(`only ${result.ok} of ${total} requests answered 2xx`)
    if (bad.length) fail(`memory (store) run: ${bad.join(', ')}`)
    // Every request made a new session; the store keeps up to its maxEntries (100,000), least
    // recently used out first, so the check's own session may be the one that left.
    const maxEntries = 100_000
    const expectedSize = Math.min(maxEntries, baselineReport.storeSize + result.ok)
    if (afterGcReport.storeSize !== expectedSize) log(`  WARNING: the store holds ${afterGcReport.storeSize} sessions, not ${expectedSize}`)
    return {
      route: '/login',
      requests: result.requests,
      sessionsCreated: result.ok,
      reqPerSec: result.reqPerSec,
      p99: result.p99,
      foreignCpu,
      storeSizeBefore: baselineReport.storeSize,
      storeSizeAfter: afterGcReport.storeSize,
      expectedStoreSize: expectedSize,
      maxEntries,
      baseline,
      after: afterReport.before,
      afterGc: afterGcReport.afterGc
    }
  } finally {
    await server.stop()
  }
}

// ---------------------------------------------------------------- main

const started = Date.now()
const timings = {}
const results = { date: new Date().toISOString(), machine, versions, settings, failures, timings }
log(`bench: ${quick ? 'QUICK smoke run' : 'full run'}; ${machine.cpuModel} × ${machine.cores}, Node ${machine.node}; seed ${settings.seed}`)

async function phase (name, fn, key = name) {
  if (!settings.only.includes(name)) return
  const t = Date.now()
  try {
    results[key] = await fn()
  } catch (error) {
    fail(`${key}: ${error.stack ?? error.message}`)
  }
  timings[key] = (Date.now() - t) / 1000
}

results.redis = redisInfo
results.redisCluster = clusterInfo
try {
  await phase('http', runHttp)
} finally {
  // Redis serves the HTTP phase only.
  await stopRedis()
}
await phase('micro', runMicro)
await phase('proxy', runProxy)
await phase('memory', runMemory)
await phase('memory', runMemoryStore, 'memoryStore')
timings.total = (Date.now() - started) / 1000
results.ratios = computeRatios(results)
// CPU used by other processes on the machine while measurements ran (0..1 of all cores).
{
  const shares = [
    ...(results.http?.cells ?? []).flatMap((c) => c.rounds.filter((r) => r?.used).map((r) => r.foreignCpu)),
    results.micro?.foreignCpuMax,
    results.proxy?.foreignCpuMax,
    results.memory?.foreignCpu,
    results.memoryStore?.foreignCpu
  ].filter(Number.isFinite)
  results.contention = {
    foreignCpuMedian: shares.length ? median(shares) : null,
    foreignCpuMax: shares.length ? Math.max(...shares) : null,
    loadAverageAtEnd: os.loadavg(),
    httpRoundsLeftOut: (results.http?.cells ?? []).reduce((n, c) => n + c.rounds.filter((r) => r?.used === false).length, 0),
    gate: gate.summary(),
    microGate: results.micro?.gate ?? null,
    proxyGate: results.proxy?.gate ?? null,
    note: 'share of all cores used by processes other than the benchmark during measurements; above 0.10 the numbers are suspect'
  }
}

mkdirSync(settings.out, { recursive: true })
const jsonPath = path.join(settings.out, 'latest.json')
const svgPath = path.join(settings.out, 'chart.svg')
writeFileSync(jsonPath, JSON.stringify(results, null, 2) + '\n')
writeFileSync(svgPath, svgChart(results))

console.log(textReport(results))
console.log(`\nWrote ${path.relative(process.cwd(), jsonPath)} and ${path.relative(process.cwd(), svgPath)}`)
if (failures.length) {
  console.error(`\nbench FAILED: ${failures.length} problem(s), see above`)
  process.exit(1)
}
process.exit(0)
