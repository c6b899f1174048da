#!/usr/bin/env node
// The benchmark: `npm run bench` (which builds first), or `node bench/run.js` on a built tree.
//
//   --quick (or BENCH_QUICK=1)  tiny durations, a smoke run of everything (seconds)
//   --rounds N --duration S --warmup S --connections N --memory-requests N --micro-ms MS
//   --only http,micro,memory   --seed N   --out DIR
//   --no-gate                  measure even while other processes keep the CPU busy
//
// Each server variant runs in its own child process (bench/server.js) on 127.0.0.1; the load
// comes from autocannon in this process. Every round starts every variant once, in a shuffled
// order, and runs its routes in a rotating order; the tables give medians over rounds. The run
// fails (exit code 1) if any request errors, times out, answers non-2xx or with an unexpected
// body, or if any variant does not behave as a session store should.
import { fork, execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { EXPECTED_BODY, SESSION_ROUTES, VARIANTS, median, prng, sessionData, shuffle } from './common.js'
import { NodeFernet } from './node-fernet.js'
import { QuietGate, cpuSnapshot, foreignShare } from './cpu.js'
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
    'micro-ms': { type: 'string' },
    only: { type: 'string' },
    seed: { type: 'string' },
    out: { type: 'string' },
    'no-gate': { type: 'boolean', default: false }
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
  microMs: num(args['micro-ms'], quick ? 15 : 150),
  microWarmupMs: quick ? 10 : 100,
  seed: num(args.seed, Date.now() % 1_000_000),
  only: (args.only ?? 'http,micro,memory').split(',').map((s) => s.trim()),
  out: path.resolve(args.out ?? path.join(here, 'results', quick ? 'tmp' : '')),
  // The quiet gate (bench/cpu.js): off in quick mode, whose numbers mean nothing anyway.
  gate: !quick && !args['no-gate']
}
for (const [name, value] of Object.entries(settings)) {
  if (typeof value === 'number' && !(value >= 0)) throw new TypeError(`bench: --${name} must be a number, 0 or more`)
}

// A hard bound on the whole run, whatever happens: children are ours and are killed on exit.
const children = new Set()
const watchdogMs = quick ? 180_000 : 1_200_000
setTimeout(() => {
  console.error(`bench: still running after ${watchdogMs / 1000}s; giving up`)
  for (const child of children) child.kill('SIGKILL')
  process.exit(1)
}, watchdogMs).unref()
process.on('exit', () => { for (const child of children) child.kill('SIGKILL') })

const gate = new QuietGate({ enabled: settings.gate, budgetMs: 40_000, sampleMs: 150 })

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
const versions = Object.fromEntries(['fastify', '@fastify/cookie', '@fastify/secure-session', 'sodium-native', 'iron-session', 'iron-webcrypto', 'fernet', 'autocannon']
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
  if (!existsSync(path.join(target, 'index.js')) || !existsSync(path.join(target, 'lib', 'fernet.js'))) {
    throw new Error('bench: the copy of dist/esm is incomplete (was a build running?); run the benchmark again')
  }
  return { dir: target, sha256: hash.digest('hex').slice(0, 16) }
}
const dist = snapshotDist()
process.env.BENCH_DIST = dist.dir
machine.buildSha256 = dist.sha256

// Keys for this run: one per variant family, shared by the harness and the servers.
const keys = {
  BENCH_KEY: NodeFernet.generateKey(),
  BENCH_SECURE_KEY: randomBytes(32).toString('base64'),
  BENCH_IRON_PASSWORD: randomBytes(32).toString('hex')
}

// ---------------------------------------------------------------- servers

async function startServer (variant, { execArgv = [] } = {}) {
  const child = fork(path.join(here, 'server.js'), [], {
    cwd: root,
    execArgv,
    env: { ...process.env, ...keys, BENCH_VARIANT: variant, BENCH_MAX_LIFETIME_MS: String(quick ? 120_000 : 600_000) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  children.add(child)
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    children.delete(child)
    resolve({ code, signal })
  }))
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${variant} server did not start within 20 s`)), 20_000)
    child.once('message', (message) => {
      clearTimeout(timer)
      if (message?.type === 'ready') resolve(message.port)
      else reject(new Error(`${variant} server sent ${JSON.stringify(message)}`))
    })
    exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`${variant} server exited during start (code ${code}, signal ${signal})`))
    })
  })
  let stopping = false
  exited.then(({ code, signal }) => { if (!stopping) fail(`${variant} server exited unexpectedly (code ${code}, signal ${signal})`) })
  return {
    port,
    pid: child.pid,
    url: `http://127.0.0.1:${port}`,
    async stop () {
      stopping = true
      if (child.connected) child.disconnect()
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
  }
}

const cookiePair = (setCookie) => setCookie.split(';')[0]

async function get (url, cookie) {
  const response = await fetch(url, { headers: cookie === undefined ? {} : { cookie } })
  return { status: response.status, body: await response.text(), setCookies: response.headers.getSetCookie() }
}

/**
 * Mints a session cookie through the variant's own /login route and checks that the variant
 * behaves: the cookie reads back, write re-issues it, untouched and read do not (recorded).
 */
async function prepareVariant (variant, server) {
  const info = { cookie: undefined, setCookie: {} }
  if (variant === 'bare') {
    // The bare client sends a cookie of the same size as ours, so that only session work differs.
    info.cookie = `session=${new NodeFernet(keys.BENCH_KEY).encrypt(JSON.stringify(sessionData()))}`
    const r = await get(`${server.url}/bare`, info.cookie)
    if (r.status !== 200 || r.body !== EXPECTED_BODY.bare) throw new Error(`bare: GET /bare answered ${r.status} ${r.body}`)
    return info
  }
  const login = await get(`${server.url}/login`)
  const sessionCookie = login.setCookies.find((c) => c.startsWith('session='))
  if (login.status !== 200 || sessionCookie === undefined) throw new Error(`${variant}: /login gave ${login.status} without a session cookie`)
  info.cookie = cookiePair(sessionCookie)
  info.cookieBytes = info.cookie.length
  const anonymous = await get(`${server.url}/read`)
  if (anonymous.status !== 401) throw new Error(`${variant}: /read without a cookie answered ${anonymous.status}, not 401`)
  for (const route of SESSION_ROUTES) {
    const r = await get(`${server.url}/${route}`, info.cookie)
    if (r.status !== 200 || r.body !== EXPECTED_BODY[route]) throw new Error(`${variant}: /${route} with the minted cookie answered ${r.status} ${r.body}`)
    const sets = r.setCookies.some((c) => c.startsWith('session='))
    info.setCookie[route] = sets ? 'yes' : 'no'
    if (route === 'write' && !sets) throw new Error(`${variant}: /write did not re-issue the session cookie`)
  }
  return info
}

async function load (url, { duration, cookie, expectBody }) {
  const result = await autocannon({
    url,
    connections: settings.connections,
    duration,
    headers: cookie === undefined ? {} : { cookie },
    expectBody,
    timeout: 10,
    // autocannon stops only at a sample tick (default every 1000 ms): tick often, so that
    // short durations are honoured. Requests/s below is 2xx answers ÷ elapsed time.
    sampleInt: 100
  })
  return {
    reqPerSec: result.duration > 0 ? result['2xx'] / result.duration : NaN,
    p50: result.latency.p50,
    p99: result.latency.p99,
    latencyMean: result.latency.mean,
    requests: result.requests.total,
    duration: result.duration,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    mismatches: result.mismatches
  }
}

function problems (r) {
  const bad = []
  if (r.errors) bad.push(`${r.errors} errors`)
  if (r.timeouts) bad.push(`${r.timeouts} timeouts`)
  if (r.non2xx) bad.push(`${r.non2xx} non-2xx`)
  if (r.mismatches) bad.push(`${r.mismatches} unexpected bodies`)
  if (!(r.requests > 0)) bad.push('no requests completed')
  return bad
}

// ---------------------------------------------------------------- phases

async function runHttp () {
  const serverVariants = ['bare', ...VARIANTS]
  const routesOf = (variant) => variant === 'bare' ? ['bare'] : SESSION_ROUTES
  const samples = new Map()
  const setCookie = new Map()
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
          server = await startServer(variant)
          const info = await prepareVariant(variant, server)
          setCookie.set(key(variant, route), info.setCookie[route])
          const url = `${server.url}/${route}`
          const options = { cookie: info.cookie, expectBody: EXPECTED_BODY[route] }
          const warm = await load(url, { ...options, duration: settings.warmup })
          let measured
          for (let attempt = 0; ; attempt++) {
            await gate.wait([process.pid, server.pid])
            const snapshot = cpuSnapshot([process.pid, server.pid])
            measured = await load(url, { ...options, duration: settings.duration })
            measured.foreignCpu = foreignShare(snapshot)
            measured.attempts = attempt + 1
            if (problems(measured).length || !gate.retry(measured.foreignCpu, attempt, settings.duration * 1000)) break
            log(`  ${variant.padEnd(15)} /${route.padEnd(10)} measured again: other processes used ${(measured.foreignCpu * 100).toFixed(0)}% of the CPU`)
          }
          const bad = [...problems(warm), ...problems(measured)]
          if (bad.length) fail(`HTTP round ${round + 1} ${variant} /${route}: ${bad.join(', ')}`)
          samples.get(key(variant, route))[round] = bad.length ? null : measured
          log(`  ${variant.padEnd(15)} /${route.padEnd(10)} ${Math.round(measured.reqPerSec).toString().padStart(7)} req/s  p99 ${measured.p99} ms`)
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
        rounds
      })
    }
  }
  return { orders, cells }
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
    await gate.wait([process.pid, server.pid])
    const baseline = (await memory(true)).afterGc
    let next = 0
    let served = 0
    let unexpected = 0
    log(`Memory: sending ${total.toLocaleString('en-US')} requests, each with its own token`)
    const started = Date.now()
    const snapshot = cpuSnapshot([process.pid, server.pid])
    const result = await autocannon({
      url: server.url,
      connections: settings.connections,
      amount: total,
      timeout: 10,
      sampleInt: 100,
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
    const seconds = (Date.now() - started) / 1000
    const foreignCpu = foreignShare(snapshot)
    const after = (await memory(false)).before
    const afterGc = (await memory(true)).afterGc
    const bad = problems({ ...result, requests: result.requests.total })
    if (unexpected) bad.push(`${unexpected} unexpected answers`)
    if (result['2xx'] < total) bad.push(`only ${result['2xx']} of ${total} requests answered 2xx`)
    // Then the HTTP phase's read cell again, one cookie over and over, on this server that has
    // now seen many sessions: a cache that degrades when full shows here.
    log('Memory: /read with one cookie on the same server, after the distinct sessions')
    const options = { cookie: cookies[0], expectBody: EXPECTED_BODY.read }
    const warm = await load(`${server.url}/read`, { ...options, duration: settings.warmup })
    await gate.wait([process.pid, server.pid])
    const snapshotAfter = cpuSnapshot([process.pid, server.pid])
    const readAfter = await load(`${server.url}/read`, { ...options, duration: settings.duration })
    readAfter.foreignCpu = foreignShare(snapshotAfter)
    bad.push(...problems(warm), ...problems(readAfter))
    if (bad.length) fail(`memory run: ${bad.join(', ')}`)
    return {
      route: '/read',
      requests: result.requests.total,
      served,
      distinctTokens: Math.min(next, total),
      reqPerSec: result['2xx'] / seconds,
      p99: result.latency.p99,
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

// ---------------------------------------------------------------- main

const started = Date.now()
const timings = {}
const results = { date: new Date().toISOString(), machine, versions, settings, failures, timings }
log(`bench: ${quick ? 'QUICK smoke run' : 'full run'}; ${machine.cpuModel} × ${machine.cores}, Node ${machine.node}; seed ${settings.seed}`)

async function phase (name, fn) {
  if (!settings.only.includes(name)) return
  const t = Date.now()
  try {
    results[name] = await fn()
  } catch (error) {
    fail(`${name}: ${error.stack ?? error.message}`)
  }
  timings[name] = (Date.now() - t) / 1000
}

await phase('http', runHttp)
await phase('micro', runMicro)
await phase('memory', runMemory)
timings.total = (Date.now() - started) / 1000
results.ratios = computeRatios(results.http, results.micro, results.memory)
// CPU used by other processes on the machine while measurements ran (0..1 of all cores).
{
  const shares = [
    ...(results.http?.cells ?? []).flatMap((c) => c.rounds.filter((r) => r?.used).map((r) => r.foreignCpu)),
    results.micro?.foreignCpuMax,
    results.memory?.foreignCpu
  ].filter(Number.isFinite)
  results.contention = {
    foreignCpuMedian: shares.length ? median(shares) : null,
    foreignCpuMax: shares.length ? Math.max(...shares) : null,
    loadAverageAtEnd: os.loadavg(),
    httpRoundsLeftOut: (results.http?.cells ?? []).reduce((n, c) => n + c.rounds.filter((r) => r?.used === false).length, 0),
    gate: gate.summary(),
    microGate: results.micro?.gate ?? null,
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
