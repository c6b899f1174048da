// What the Proxy around every Session costs on the read path, in nanoseconds: the built Session
// (BENCH_DIST) against the harness's patched copy whose constructor returns the instance itself
// (BENCH_DIST_NOPROXY; see run.js, noProxyCopy()). Run by bench/run.js in a child process of
// its own; interleaved rounds, each cell in a shuffled order, results back over IPC.
//
// Operations, each on the data a cookie of the HTTP benchmark holds:
//   construct+get  new Session({ data, origin, originText, settings }) and one get('user'): what
//                  every /read does once its JSON is parsed (get() of an object takes the
//                  baseline, one JSON.stringify of the data, in both)
//   construct      the constructor alone
//   get            get('user') on a session made before the loop: one trap, one method call
import { performance } from 'node:perf_hooks'
import { median, pluginEntry, prng, sessionData, shuffle } from './common.js'
import { QuietGate, cpuSnapshot, foreignShare } from './cpu.js'

const config = JSON.parse(process.env.BENCH_PROXY ?? '{}')
const { rounds = 5, cellMs = 200, warmupMs = 100, seed = 1, gate: gateOn = false } = config
const ownPids = [process.pid, process.ppid]
const gate = new QuietGate({ enabled: gateOn, budgetMs: 10_000, sampleMs: 50, maxWaitMs: 2000 })

const builds = {
  proxy: (await import(pluginEntry())).Session,
  noproxy: (await import(pluginEntry(process.env.BENCH_DIST_NOPROXY))).Session
}

const originText = JSON.stringify(sessionData())
const data = JSON.parse(originText)
const origin = { timestamp: Math.floor(Date.now() / 1000), keyIndex: 0 }
// The plugin's resolved settings for { key } alone, as far as a read looks at them.
const settings = Object.freeze({ userKey: 'current_user', keepOnLogin: Object.freeze([]), ttl: 86_400, maxTtl: 86_400, cookieAttributes: () => ({}) })

// The patched copy must really differ, and only in that: a proxied session shows data keys as
// properties, the other one does not; both read the same.
for (const [name, Session] of Object.entries(builds)) {
  const session = new Session({ data: JSON.parse(originText), origin, originText, settings })
  if (session.get('user')?.name !== data.user.name) throw new Error(`proxy micro: ${name} Session does not read the data`)
  const proxied = session.visits === data.visits
  if (proxied !== (name === 'proxy')) throw new Error(`proxy micro: the ${name} build ${proxied ? 'has' : 'lacks'} property access; is the patched copy right?`)
}

// Results go to a sink that is checked at the end, and each new session is kept (as a request
// keeps it), so that neither loop can be optimised away.
let sink = 0
let kept
const OPS = {
  'construct+get': (Session) => () => {
    kept = new Session({ data, origin, originText, settings })
    sink += kept.get('user').id
  },
  construct: (Session) => () => {
    kept = new Session({ data, origin, originText, settings })
  },
  get: (Session) => {
    const session = new Session({ data, origin, originText, settings })
    return () => { sink += session.get('user').id }
  }
}

const cells = []
for (const op of Object.keys(OPS)) for (const build of Object.keys(builds)) cells.push({ build, op, fn: OPS[op](builds[build]) })
const cellId = (c) => `${c.build}|${c.op}`

/** ns per operation over `ms`, timed in batches so that the clock is read rarely. */
function runCell (fn, ms) {
  const batch = 2000
  let ops = 0
  const start = performance.now()
  let elapsed
  do {
    for (let i = 0; i < batch; i++) fn()
    ops += batch
  } while ((elapsed = performance.now() - start) < ms)
  return (elapsed * 1e6) / ops
}

for (const cell of cells) runCell(cell.fn, warmupMs)
const random = prng(seed)
const perRound = Object.fromEntries(cells.map((c) => [cellId(c), []]))
const foreign = []
for (let round = 0; round < rounds; round++) {
  for (const cell of shuffle(cells, random)) {
    let ns
    for (let attempt = 0; ; attempt++) {
      await gate.wait(ownPids)
      const snapshot = cpuSnapshot(ownPids)
      ns = runCell(cell.fn, cellMs)
      const share = foreignShare(snapshot)
      foreign.push(share)
      if (!gate.retry(share, attempt, cellMs)) break
    }
    perRound[cellId(cell)].push(ns)
  }
}
if (!(sink > 0) || kept === undefined) throw new Error('proxy micro: the sink stayed empty')

const shares = foreign.filter(Number.isFinite)
const message = {
  type: 'proxy',
  config: { rounds, cellMs, warmupMs, seed },
  results: cells.map(({ build, op }) => ({ build, op, nsPerOp: median(perRound[`${build}|${op}`]), rounds: perRound[`${build}|${op}`] })),
  foreignCpuMax: shares.length ? Math.max(...shares) : null,
  gate: gate.summary()
}
if (process.send) process.send(message, () => process.exit(0))
else console.log(JSON.stringify(message, null, 2))
