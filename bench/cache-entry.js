// What one entry of the verified-token cache costs for a session near maxSessionSize (4,000
// characters of token): the weight the cache counts it for (found from how many such entries a
// cache of a known byte budget holds before it evicts the first), and the heap it really takes
// (heap used after GC, for many entries, per entry). Not part of `npm run bench`; quoted by
// SECURITY.md. Run: npm run build && node --expose-gc bench/cache-entry.js
import { CookieBackend } from '../dist/esm/lib/backends/cookie.js'
import { DEFAULT_MAX_SESSION_SIZE, DEFAULT_TTL, Fernet } from '../dist/esm/index.js'

const key = new Uint8Array(Buffer.from(Fernet.generateKey(), 'base64url'))
const settings = { userKey: 'current_user', keepOnLogin: [], ttl: DEFAULT_TTL, maxTtl: DEFAULT_TTL, cookieAttributes: () => ({}) }
const backend = (cacheSize) => new CookieBackend({ keys: [key], maxSessionSize: DEFAULT_MAX_SESSION_SIZE, maxTokenLength: 4096, absoluteLifetime: undefined, createdKey: '_created', settings, cacheSize })
const now = Math.floor(Date.now() / 1000)

/** The largest session (one string of `note`) whose token stays within maxSessionSize. */
async function largest (probe, n) {
  let length = 2800
  for (;;) {
    try { await probe.encode({ n, note: 'x'.repeat(length + 1) }, now) } catch { break }
    length++
  }
  return { n, note: 'x'.repeat(length) }
}

// Counted weight: a cache of 1,000 entries may hold 1,000 KB. Fill new caches with more and more
// large sessions until the first one is evicted (lookup() marks an entry as used, so each count
// gets its own cache, looked into only once).
const sample = await largest(backend(1), 1_000_000) // seven-digit counters: every session the same size
const jsonBytes = JSON.stringify(sample).length
let tokenLength = 0
let fits = 0
for (let count = 1; ; count++) {
  const counted = backend(1000)
  const first = await counted.encode(sample, now)
  tokenLength = first.length
  for (let i = 1; i < count; i++) await counted.encode({ ...sample, n: 1_000_000 + i }, now)
  if (counted.lookup(first, now) === undefined) break
  fits = count
}
const countedBytes = (1000 * 1024) / fits

// Heap: 2,000 large entries in a cache with room for them all.
const entries = 2000
const heapBackend = backend(entries * 20)
globalThis.gc?.()
const before = process.memoryUsage().heapUsed
const tokens = []
for (let i = 0; i < entries; i++) tokens.push(await heapBackend.encode({ ...sample, n: 2_000_000 + i }, now))
globalThis.gc?.()
const after = process.memoryUsage().heapUsed
// The tokens are the cache's keys, so keeping them costs nothing more; every entry is still held.
const stillHeld = tokens.filter((token) => heapBackend.lookup(token, now) !== undefined).length
if (stillHeld !== entries) throw new Error(`only ${stillHeld} of ${entries} entries were held`)
console.log(JSON.stringify({
  node: process.version,
  tokenCharacters: tokenLength,
  jsonBytes,
  countedEntriesIn1000KB: fits,
  countedBytesPerEntry: Math.round(countedBytes),
  heapBytesPerEntry: globalThis.gc === undefined ? 'run with --expose-gc' : Math.round((after - before) / entries)
}))
