#!/usr/bin/env node
// The cold read before and after the padding-oracle fix (commit 5ffba8e: Fernet verifies the MAC,
// then decrypts, strictly one after the other; before it, AES decryption ran alongside the MAC
// check). `npm run build` first, then:
//
//   node bench/before-after.js [--quick] [--rounds N] [--duration S] [--warmup S] [--connections N]
//                              [--micro-ms MS] [--commit REV] [--only http,micro] [--out DIR] [--no-gate]
//                              [--fernet-only]
//
// Three builds of the plugin, side by side in one run:
//   before        the commit before the fix (default 6167430), built in a temporary git worktree
//                 (`git worktree add --detach` under the system's temp directory, removed at the
//                 end with `git worktree remove --force`; main's checkout and index are not touched)
//   after         this working tree's dist/esm, copied at the start
//   after+oldopen after, with the compiled openToken method of before put back in its
//                 lib/fernet.js: the fix alone, apart from everything else that changed since
//                 (both method texts are in the JSON)
// HTTP: GET /read on each build with cacheSize 0 (every request verifies and decrypts), one
// server process per measurement, the builds in a shuffled order in every round, one cookie
// for all: a plain Fernet token of the session's JSON under one key, which all three read.
// Micro: Fernet decrypt of 100 B, 1 KB and 3 KB, one at a time and 64 in flight, before vs after
// vs node:crypto (bench/micro.js). Results: bench/results/before-after.json (quick: results/tmp).
//
// If the old commit cannot be built in a worktree, its lib/fernet.ts, base64.ts, bytes.ts and
// derive-key.ts (no Fastify in them) are compiled alone: the micro part and after+oldopen still
// run, the HTTP "before" build does not, and the output says so. --fernet-only takes that path
// on purpose (no worktree at all).
//
// Each Fernet build's openToken method is the one thing after+oldopen changes, so "after ÷
// after+oldopen" is the fix's cost alone and "after+oldopen ÷ before" everything else.
import { execFileSync, fork } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { EXPECTED_BODY, median, prng, sessionData, shuffle } from './common.js'
import { QuietGate, cpuSnapshot, foreignShare } from './cpu.js'
import { get, load, problems, startServer } from './harness.js'
import { NodeFernet } from './node-fernet.js'
import { fmt2, fmtInt, ratio, reportEnd, table } from './report.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..')
const tsc = path.join(root, 'node_modules', '.bin', 'tsc')

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    'micro-ms': { type: 'string' },
    commit: { type: 'string', default: '6167430' },
    'fernet-only': { type: 'boolean', default: false },
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
  commit: args.commit,
  rounds: num(args.rounds, quick ? 2 : 9),
  duration: num(args.duration, quick ? 0.3 : 2.5),
  warmup: num(args.warmup, quick ? 0.1 : 0.5),
  connections: num(args.connections, 10),
  microMs: num(args['micro-ms'], quick ? 15 : 250),
  microWarmupMs: quick ? 10 : 100,
  seed: num(args.seed, Date.now() % 1_000_000),
  only: (args.only ?? 'http,micro').split(',').map((s) => s.trim()),
  out: path.resolve(args.out ?? path.join(here, 'results', quick ? 'tmp' : '')),
  gate: !quick && !args['no-gate']
}

const log = (message) => console.error(message)
const failures = []
const fail = (message) => {
  failures.push(message)
  console.error(`  FAIL: ${message}`)
}
const git = (...gitArgs) => execFileSync('git', gitArgs, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()

// ---------------------------------------------------------------- clean-up, whatever happens

const children = new Set()
const tmp = mkdtempSync(path.join(os.tmpdir(), 'fes-before-after-'))
let worktree = null
/** Synchronous, so that it also runs from the 'exit' event: the worktree must not outlive us. */
function cleanUp () {
  for (const child of children) child.kill('SIGKILL')
  if (worktree !== null) {
    // node_modules in the worktree is a link to main's: unlinked first, so that nothing can
    // follow it into main's packages while the worktree is removed.
    try { unlinkSync(path.join(worktree, 'node_modules')) } catch {}
    try {
      git('worktree', 'remove', '--force', worktree)
    } catch (error) {
      console.error(`before-after: git worktree remove --force ${worktree} failed: ${error.stderr ?? error.message}`)
    }
    worktree = null
  }
  rmSync(tmp, { recursive: true, force: true })
}
process.on('exit', cleanUp)
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130))
const watchdogMs = quick ? 240_000 : 1_800_000
setTimeout(() => {
  console.error(`before-after: still running after ${watchdogMs / 1000}s; giving up`)
  process.exit(1)
}, watchdogMs).unref()

// ---------------------------------------------------------------- the builds

// Bare imports of every copy below (fastify-plugin, lru-cache, ...) resolve to main's packages,
// and the copies' .js files are ES modules, as under main's package.json.
symlinkSync(path.join(root, 'node_modules'), path.join(tmp, 'node_modules'), 'dir')
writeFileSync(path.join(tmp, 'package.json'), '{ "type": "module", "private": true }\n')

const commit = git('rev-parse', '--verify', `${settings.commit}^{commit}`)
const builds = {}
const notes = []

if (!existsSync(path.join(root, 'dist', 'esm', 'index.js'))) throw new Error('before-after: dist/esm/index.js is missing; run `npm run build` first')
const afterDir = path.join(tmp, 'after')
cpSync(path.join(root, 'dist', 'esm'), afterDir, { recursive: true })
builds.after = { dir: afterDir, plugin: true, label: 'after (this tree)' }

/** A build's compiled Fernet module: lib/fernet/fernet.js, or lib/fernet.js in commits before the layout had folders. */
function fernetModule (dir) {
  const nested = path.join(dir, 'lib', 'fernet', 'fernet.js')
  return existsSync(nested) ? nested : path.join(dir, 'lib', 'fernet.js')
}

let oldFernet
if (args['fernet-only']) {
  notes.push(`--fernet-only: ${commit.slice(0, 7)}'s lib/fernet.ts, base64.ts, bytes.ts and derive-key.ts compiled alone, no worktree: no HTTP "before" build`)
} else {
  try {
    const tree = path.join(tmp, 'before-tree')
    log(`before-after: git worktree add --detach ${tree} ${commit.slice(0, 7)}`)
    git('worktree', 'add', '--detach', tree, commit)
    worktree = tree
    symlinkSync(path.join(root, 'node_modules'), path.join(worktree, 'node_modules'), 'dir')
    log('before-after: building it (tsc -p tsconfig.build.json)')
    execFileSync(tsc, ['-p', 'tsconfig.build.json'], { cwd: worktree, stdio: ['ignore', 'pipe', 'pipe'] })
    const dir = path.join(worktree, 'dist', 'esm')
    if (!existsSync(path.join(dir, 'index.js'))) throw new Error('the build wrote no dist/esm/index.js')
    builds.before = { dir, plugin: true, label: `before (${commit.slice(0, 7)})` }
    oldFernet = fernetModule(dir)
  } catch (error) {
    const why = String(error.stdout ?? '') + String(error.stderr ?? '') || error.message
    notes.push(`the worktree build of ${commit.slice(0, 7)} failed (${why.trim().split('\n').slice(0, 3).join(' | ')}); compiled its lib/fernet.ts, base64.ts, bytes.ts and derive-key.ts alone: no HTTP "before" build`)
    log(`before-after: ${notes.at(-1)}`)
  }
}
if (builds.before === undefined) {
  const files = ['fernet', 'base64', 'bytes', 'derive-key']
  const src = path.join(tmp, 'before-fernet-src')
  mkdirSync(path.join(src, 'lib'), { recursive: true })
  const folder = git('ls-tree', '--name-only', commit, 'lib/fernet/fernet.ts') === '' ? 'lib' : 'lib/fernet'
  for (const file of files) writeFileSync(path.join(src, 'lib', `${file}.ts`), git('show', `${commit}:${folder}/${file}.ts`) + '\n')
  const outDir = path.join(tmp, 'before-fernet')
  execFileSync(tsc, ['--outDir', outDir, '--rootDir', src, '--target', 'es2022', '--module', 'node16', '--moduleResolution', 'node16',
    '--lib', 'es2022,dom', '--types', 'node', '--strict', '--skipLibCheck', ...files.map((f) => path.join(src, 'lib', `${f}.ts`))],
  { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] })
  oldFernet = path.join(outDir, 'lib', 'fernet.js')
  builds.before = { dir: outDir, plugin: false, label: `before (${commit.slice(0, 7)}), Fernet only` }
}

// after, with only the old openToken: the fix isolated from everything else since the old
// commit. The compiled method is moved, not the file: lib/fernet.ts changed in other ways too
// (readKey became the exported keyBytes, which lib/options.js imports).
const OPEN_TOKEN = 'async [openToken](token, ttl, now) {'
/** The compiled openToken method of a fernet.js: from its head to its closing brace. */
function openTokenMethod (source, file) {
  const start = source.indexOf(OPEN_TOKEN)
  if (start === -1 || source.indexOf(OPEN_TOKEN, start + 1) !== -1) throw new Error(`before-after: "${OPEN_TOKEN}" is not in ${file} exactly once`)
  // Brace counting is enough: the method holds no string or regular expression with a brace.
  let depth = 0
  for (let i = start + OPEN_TOKEN.length - 1; i < source.length; i++) {
    if (source[i] === '{') depth++
    else if (source[i] === '}' && --depth === 0) return source.slice(start, i + 1)
  }
  throw new Error(`before-after: the openToken method in ${file} does not end`)
}
const hybridDir = path.join(tmp, 'after-oldopen')
cpSync(afterDir, hybridDir, { recursive: true })
const hybridFernet = fernetModule(hybridDir)
const afterSource = readFileSync(hybridFernet, 'utf8')
const newMethod = openTokenMethod(afterSource, `after/${path.relative(hybridDir, hybridFernet)}`)
const oldMethod = openTokenMethod(readFileSync(oldFernet, 'utf8'), `${commit.slice(0, 7)}:lib/fernet.js`)
if (oldMethod === newMethod) throw new Error('before-after: openToken is the same in both builds; nothing to compare')
writeFileSync(hybridFernet, afterSource.replace(newMethod, () => oldMethod))
builds['after+oldopen'] = { dir: hybridDir, plugin: true, label: 'after, with the old openToken' }
const fernetDiff = git('diff', '--numstat', '-M', commit, '--', 'lib/fernet.ts', 'lib/fernet/fernet.ts')
const [added = 0, removed = 0] = fernetDiff === '' ? [] : fernetDiff.split(/\s+/).map(Number)
notes.push(`lib/fernet.ts, ${commit.slice(0, 7)} → this tree: +${added} −${removed} lines; after+oldopen is after with only the compiled openToken method of ${commit.slice(0, 7)}`)

const machine = {
  cpuModel: os.cpus()[0]?.model?.trim() ?? 'unknown CPU',
  cores: os.cpus().length,
  node: process.version,
  openssl: process.versions.openssl,
  platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (default)',
  head: (() => { try { return git('rev-parse', '--short', 'HEAD') } catch { return 'unknown' } })()
}

// ---------------------------------------------------------------- HTTP: the cold read

const key = NodeFernet.generateKey()
const cookie = `session=${new NodeFernet(key).encrypt(JSON.stringify(sessionData()))}`
const gate = new QuietGate({ enabled: settings.gate, budgetMs: 40_000, sampleMs: 150 })

async function runHttp () {
  const names = Object.keys(builds).filter((name) => builds[name].plugin)
  const samples = Object.fromEntries(names.map((name) => [name, []]))
  const random = prng(settings.seed)
  for (let round = 0; round < settings.rounds; round++) {
    const order = shuffle(names, random)
    log(`HTTP round ${round + 1}/${settings.rounds}: ${order.join(', ')}`)
    for (const name of order) {
      let server
      try {
        server = await startServer('ours-cold', {
          env: { BENCH_KEY: key, BENCH_DIST: builds[name].dir },
          children,
          maxLifetimeMs: quick ? 120_000 : 600_000,
          onUnexpectedExit: fail
        })
        const anonymous = await get(`${server.url}/read`)
        if (anonymous.status !== 401) throw new Error(`/read without a cookie answered ${anonymous.status}, not 401`)
        const first = await get(`${server.url}/read`, cookie)
        if (first.status !== 200 || first.body !== EXPECTED_BODY.read) throw new Error(`/read with the cookie answered ${first.status} ${first.body}`)
        const url = `${server.url}/read`
        const options = { connections: settings.connections, cookie, expectBody: EXPECTED_BODY.read }
        const warm = await load(url, { ...options, duration: settings.warmup })
        const own = [process.pid, server.pid]
        let measured
        for (let attempt = 0; ; attempt++) {
          await gate.wait(own)
          const snapshot = cpuSnapshot(own)
          measured = await load(url, { ...options, duration: settings.duration })
          measured.foreignCpu = foreignShare(snapshot)
          if (problems(measured).length || !gate.retry(measured.foreignCpu, attempt, settings.duration * 1000)) break
          log(`  ${name.padEnd(14)} measured again: other processes used ${(measured.foreignCpu * 100).toFixed(0)}% of the CPU`)
        }
        const bad = [...problems(warm), ...problems(measured)]
        if (bad.length) fail(`HTTP round ${round + 1} ${name}: ${bad.join(', ')}`)
        samples[name][round] = bad.length ? null : measured
        log(`  ${name.padEnd(14)} /read ${Math.round(measured.reqPerSec).toString().padStart(7)} req/s  p99 ${measured.p99} ms`)
      } catch (error) {
        fail(`HTTP round ${round + 1} ${name}: ${error.message}`)
      } finally {
        await server?.stop()
      }
    }
  }
  const cells = names.map((name) => {
    const rounds = Array.from({ length: settings.rounds }, (_, i) => samples[name][i] ?? null)
    const ok = rounds.filter((r) => r !== null)
    return {
      build: name,
      reqPerSec: median(ok.map((r) => r.reqPerSec)),
      p99: median(ok.map((r) => r.p99)),
      p50: median(ok.map((r) => r.p50)),
      foreignCpuMax: Math.max(0, ...ok.map((r) => r.foreignCpu ?? 0)),
      rounds
    }
  })
  return { cells }
}

// ---------------------------------------------------------------- micro: Fernet decrypt

async function runMicro () {
  const fernetOf = (name) => name === 'before' ? pathToFileURL(oldFernet).href : pathToFileURL(fernetModule(builds[name].dir)).href
  const child = fork(path.join(here, 'micro.js'), [], {
    cwd: root,
    env: {
      ...process.env,
      BENCH_MICRO: JSON.stringify({
        rounds: settings.rounds,
        cellMs: settings.microMs,
        warmupMs: settings.microWarmupMs,
        seed: settings.seed,
        gate: settings.gate,
        webcrypto: { before: fernetOf('before'), after: fernetOf('after') },
        others: ['node-fernet'],
        ops: ['decrypt']
      })
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  children.add(child)
  let message
  child.on('message', (m) => { message = m })
  const { code, signal } = await new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  children.delete(child)
  if (code !== 0 || message?.type !== 'micro') throw new Error(`micro benchmark exited with code ${code}, signal ${signal}`)
  for (const cell of message.results) if (!(cell.opsPerSec > 0)) fail(`micro ${cell.impl} ${cell.size} B ×${cell.batch}: no result`)
  return message
}

// ---------------------------------------------------------------- report

function ratios (results) {
  const out = []
  const add = (group, name, a, b) => {
    if (a === undefined || b === undefined) return
    out.push({ group, name, ...ratio(a, b) })
  }
  if (results.http !== undefined) {
    const series = (build) => {
      const cell = results.http.cells.find((c) => c.build === build)
      return cell === undefined ? undefined : { median: cell.reqPerSec, rounds: cell.rounds.map((r) => r?.reqPerSec ?? NaN) }
    }
    add('HTTP /read, cacheSize 0 (req/s)', 'after ÷ before', series('after'), series('before'))
    add('HTTP /read, cacheSize 0 (req/s)', 'after ÷ after+oldopen (the fix alone)', series('after'), series('after+oldopen'))
    add('HTTP /read, cacheSize 0 (req/s)', 'after+oldopen ÷ before (everything else)', series('after+oldopen'), series('before'))
  }
  if (results.micro !== undefined) {
    const { micro } = results
    const series = (impl, size, batch) => {
      const cell = micro.results.find((c) => c.impl === impl && c.size === size && c.batch === batch)
      return cell === undefined ? undefined : { median: cell.opsPerSec, rounds: cell.rounds }
    }
    for (const batch of [1, micro.config.inFlight]) {
      for (const size of micro.config.sizes) {
        const group = `micro decrypt ${batch === 1 ? 'one at a time' : `${batch} in flight`} (ops/s)`
        add(group, `${size} B: after ÷ before`, series('after', size, batch), series('before', size, batch))
        add(group, `${size} B: after ÷ node:crypto`, series('after', size, batch), series('node-fernet', size, batch))
        add(group, `${size} B: before ÷ node:crypto`, series('before', size, batch), series('node-fernet', size, batch))
      }
    }
  }
  return out
}

function textReport (results) {
  const out = []
  out.push(`Cold read before/after the padding-oracle fix${quick ? ' (QUICK smoke mode: numbers are not meaningful)' : ''}`)
  out.push(`${machine.cpuModel} × ${machine.cores} cores, Node ${machine.node}, ${machine.platform}; ${results.date}; HEAD ${machine.head}, before = ${commit.slice(0, 7)}`)
  for (const note of notes) out.push(`note: ${note}`)
  if (results.http !== undefined) {
    out.push('')
    out.push(`HTTP GET /read, cacheSize 0 (autocannon, ${settings.connections} connections, ${settings.duration}s per cell after ${settings.warmup}s warm-up, ${settings.rounds} interleaved rounds; medians)`)
    out.push(table(['build', 'req/s', 'p99 ms', 'p50 ms', 'req/s over rounds', 'other CPU'], results.http.cells.map((c) => {
      const rps = c.rounds.filter(Boolean).map((r) => r.reqPerSec)
      return [builds[c.build].label, fmtInt(c.reqPerSec), fmt2(c.p99), fmt2(c.p50), rps.length ? `${fmtInt(Math.min(...rps))}–${fmtInt(Math.max(...rps))}` : 'n/a', `${(c.foreignCpuMax * 100).toFixed(0)}%`]
    }), ['l', 'r', 'r', 'r', 'r', 'r']))
  }
  if (results.micro !== undefined) {
    const { micro } = results
    out.push('')
    out.push(`Micro: Fernet decrypt ops/s (median of ${micro.config.rounds} rounds of ${micro.config.cellMs} ms per cell)`)
    const rows = []
    for (const size of micro.config.sizes) {
      for (const batch of [1, micro.config.inFlight]) {
        const ops = (impl) => micro.results.find((c) => c.impl === impl && c.size === size && c.batch === batch)?.opsPerSec
        rows.push([`${size} B`, batch === 1 ? '1 (await each)' : `${batch} in flight`, fmtInt(ops('before')), fmtInt(ops('after')), fmtInt(ops('node-fernet'))])
      }
    }
    out.push(table(['size', 'concurrency', 'before', 'after', 'node:crypto'], rows, ['r', 'l', 'r', 'r', 'r']))
  }
  out.push('')
  out.push('Ratios (of medians; paired = per-round ratio, median [min–max])')
  out.push(table(['group', 'ratio', 'value', 'paired'], results.ratios.map((r) => [r.group, r.name, fmt2(r.value),
    Number.isFinite(r.pairedMedian) ? `${fmt2(r.pairedMedian)} [${fmt2(r.pairedMin)}–${fmt2(r.pairedMax)}]` : '']), ['l', 'l', 'r', 'r']))
  const g = [results.contention?.gate, results.micro?.gate].filter(Boolean)
  out.push('')
  out.push(`Other processes' CPU, most during a measurement: ${Number.isFinite(results.contention?.foreignCpuMax) ? `${(results.contention.foreignCpuMax * 100).toFixed(0)}%` : 'n/a'}; ` +
    `the quiet gate ${g.some((x) => x.enabled) ? `waited ${g.reduce((n, x) => n + x.waitedSeconds, 0).toFixed(1)} s and re-measured ${g.reduce((n, x) => n + x.retries, 0)} time(s)` : 'was off'}`)
  out.push(...reportEnd(results))
  return out.join('\n')
}

// ---------------------------------------------------------------- main

const started = Date.now()
const timings = {}
const results = {
  date: new Date().toISOString(),
  machine,
  settings,
  commit,
  builds: Object.fromEntries(Object.entries(builds).map(([name, b]) => [name, { label: b.label, plugin: b.plugin }])),
  openToken: { before: oldMethod, after: newMethod },
  notes,
  failures,
  timings
}
try {
  for (const [name, fn] of [['http', runHttp], ['micro', runMicro]]) {
    if (!settings.only.includes(name)) continue
    const t = Date.now()
    try {
      results[name] = await fn()
    } catch (error) {
      fail(`${name}: ${error.stack ?? error.message}`)
    }
    timings[name] = (Date.now() - t) / 1000
  }
} finally {
  cleanUp()
}
timings.total = (Date.now() - started) / 1000
results.ratios = ratios(results)
const shares = [
  ...(results.http?.cells ?? []).flatMap((c) => c.rounds.filter(Boolean).map((r) => r.foreignCpu)),
  results.micro?.foreignCpuMax
].filter(Number.isFinite)
results.contention = { foreignCpuMax: shares.length ? Math.max(...shares) : null, gate: gate.summary() }
mkdirSync(settings.out, { recursive: true })
const jsonPath = path.join(settings.out, 'before-after.json')
writeFileSync(jsonPath, JSON.stringify(results, null, 2) + '\n')
console.log(textReport(results))
console.log(`\nWrote ${path.relative(process.cwd(), jsonPath)}`)
if (failures.length) {
  console.error(`\nbefore-after FAILED: ${failures.length} problem(s), see above`)
  process.exit(1)
}
process.exit(0)
