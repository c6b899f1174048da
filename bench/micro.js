// Micro benchmark, run by bench/run.js in a child process of its own (the npm `fernet` package
// adds String.prototype.lpad, so it stays out of the harness): Fernet encrypt and decrypt of
// JSON of a few sizes, one call at a time (await each) and 64 in flight (Promise.all of 64),
// for ours (lib/fernet/fernet.ts from dist), the node:crypto reference and the npm `fernet` package.
// Interleaved rounds: every round runs every cell once, in a shuffled order; the harness takes
// the median ops/s over rounds. Results go back over IPC.
//
// BENCH_MICRO (JSON) sets the rounds and durations, and for bench/before-after.js also which
// builds of our Fernet to load (`webcrypto`: { name: module URL }, default { ours: the
// benchmark's copy of dist }), which other implementations to add (`others`) and which
// operations to time (`ops`).
import { performance } from 'node:perf_hooks'
import { createRequire } from 'node:module'
import { NodeFernet } from './node-fernet.js'
import { TTL, jsonOfSize, median, pluginEntry, prng, shuffle } from './common.js'
import { QuietGate, cpuSnapshot, foreignShare } from './cpu.js'

const require = createRequire(import.meta.url)

const config = JSON.parse(process.env.BENCH_MICRO ?? '{}')
const {
  rounds = 5, cellMs = 250, warmupMs = 100, seed = 1, sizes = [100, 1024, 3072], inFlight = 64, gate: gateOn = false,
  webcrypto = { ours: pluginEntry() }, others = ['node-fernet', 'npm-fernet'], ops = ['encrypt', 'decrypt']
} = config
// The harness (our parent) is idle while this runs; both count as our own CPU.
const ownPids = [process.pid, process.ppid]
const gate = new QuietGate({ enabled: gateOn, budgetMs: 15_000, sampleMs: 50, maxWaitMs: 3000 })

const key = NodeFernet.generateKey()
const textDecoder = new TextDecoder()

// Each implementation: encrypt(text) -> token text, decrypt(token) -> plaintext (bytes or string),
// either synchronously or as a promise; the loops await either.
const IMPLS = {}
for (const [name, url] of Object.entries(webcrypto)) {
  const { Fernet } = await import(url)
  const fernet = new Fernet(key)
  IMPLS[name] = {
    encrypt: (text) => fernet.encrypt(text),
    decrypt: (token) => fernet.decrypt(token, { ttl: TTL }),
    asText: (plain) => textDecoder.decode(plain)
  }
}
const node = new NodeFernet(key)
if (others.includes('node-fernet')) {
  IMPLS['node-fernet'] = {
    encrypt: (text) => node.encrypt(text),
    decrypt: (token) => node.decrypt(token, { ttl: TTL }),
    asText: (plain) => plain.toString('utf8')
  }
}
if (others.includes('npm-fernet')) {
  const fernetPkg = require('fernet')
  const npmSecret = new fernetPkg.Secret(key)
  IMPLS['npm-fernet'] = {
    // The package's documented API: a Token per message (it also stamps the time).
    encrypt: (text) => new fernetPkg.Token({ secret: npmSecret, ttl: 0 }).encode(text),
    decrypt: (token) => new fernetPkg.Token({ secret: npmSecret, token, ttl: TTL }).decode(),
    asText: (plain) => plain
  }
}
const IMPL_NAMES = Object.keys(IMPLS)

const texts = Object.fromEntries(sizes.map((size) => [size, jsonOfSize(size)]))

// Interop check before timing: every implementation opens every other's tokens (fails loudly).
const tokens = {}
for (const name of IMPL_NAMES) {
  tokens[name] = {}
  for (const size of sizes) tokens[name][size] = await IMPLS[name].encrypt(texts[size])
}
for (const maker of IMPL_NAMES) {
  for (const opener of IMPL_NAMES) {
    for (const size of sizes) {
      const plain = IMPLS[opener].asText(await IMPLS[opener].decrypt(tokens[maker][size]))
      if (plain !== texts[size]) throw new Error(`micro: ${opener} did not open a ${size} B token made by ${maker}`)
    }
  }
}

const cells = []
for (const impl of IMPL_NAMES) {
  for (const op of ops) {
    for (const size of sizes) {
      for (const batch of [1, inFlight]) cells.push({ impl, op, size, batch })
    }
  }
}
const cellId = (c) => `${c.impl}|${c.op}|${c.size}|${c.batch}`

async function runCell ({ impl, op, size, batch }, ms) {
  const fn = IMPLS[impl][op]
  // Each implementation decrypts its own token (all were checked to be interchangeable).
  const arg = op === 'encrypt' ? texts[size] : tokens[impl][size]
  let ops = 0
  const start = performance.now()
  let elapsed = 0
  if (batch === 1) {
    do {
      await fn(arg)
      ops++
    } while ((elapsed = performance.now() - start) < ms)
  } else {
    const calls = new Array(batch)
    do {
      for (let i = 0; i < batch; i++) calls[i] = fn(arg)
      await Promise.all(calls)
      ops += batch
    } while ((elapsed = performance.now() - start) < ms)
  }
  return (ops * 1000) / elapsed
}

const random = prng(seed)
for (const cell of cells) await runCell(cell, warmupMs)
const perRound = Object.fromEntries(cells.map((c) => [cellId(c), []]))
const orders = []
const foreign = []
for (let round = 0; round < rounds; round++) {
  const order = shuffle(cells, random)
  orders.push(order.map(cellId))
  for (const cell of order) {
    let opsPerSec
    for (let attempt = 0; ; attempt++) {
      await gate.wait(ownPids)
      const snapshot = cpuSnapshot(ownPids)
      opsPerSec = await runCell(cell, cellMs)
      const share = foreignShare(snapshot)
      foreign.push(share)
      if (!gate.retry(share, attempt, cellMs)) break
    }
    perRound[cellId(cell)].push(opsPerSec)
  }
}

const results = cells.map((c) => ({
  ...c,
  opsPerSec: median(perRound[cellId(c)]),
  rounds: perRound[cellId(c)]
}))
const shares = foreign.filter(Number.isFinite)
const message = {
  type: 'micro',
  config: { rounds, cellMs, warmupMs, seed, sizes, inFlight, impls: IMPL_NAMES, ops },
  results,
  foreignCpuMax: shares.length ? Math.max(...shares) : null,
  foreignCpuMedian: shares.length ? median(shares) : null,
  gate: gate.summary()
}
if (process.send) process.send(message, () => process.exit(0))
else console.log(JSON.stringify(message, null, 2))
