// What the harness, the servers and the micro benchmark share: the session data, the names of
// variants and routes, and small statistics helpers.
import { pathToFileURL } from 'node:url'

/**
 * The plugin's built entry point. The harness copies dist/esm (from `npm run build`) to a
 * snapshot of its own and passes it in BENCH_DIST, so that a build started elsewhere during a
 * run (`npm test` rebuilds dist) cannot remove or change the code being measured. `dir` names
 * another copy (the no-Proxy one, or an older build in bench/before-after.js).
 */
export function pluginEntry (dir = process.env.BENCH_DIST) {
  return distModule('index.js', dir)
}

/** A module of a built copy of the plugin (dist/esm layout), as a file URL. */
export function distModule (file, dir = process.env.BENCH_DIST) {
  const base = dir ?? new URL('../dist/esm/', import.meta.url).pathname
  return pathToFileURL(`${base.replace(/\/$/, '')}/${file}`).href
}

/** A realistic small session, ~100 bytes of JSON. */
export const USER = Object.freeze({ id: 12345, name: 'Ada Lovelace', email: 'ada@example.com', roles: Object.freeze(['admin', 'editor']) })
export const VISITS = 41
export const sessionData = (id = USER.id, visits = VISITS) => ({ user: { ...USER, id, roles: [...USER.roles] }, visits })

/** Seconds a session lives, for every variant. */
export const TTL = 86_400

/** The session variants, in display order; 'bare' is the no-session reference server. */
export const VARIANTS = ['ours', 'secure-session', 'iron', 'node-fernet', 'ours-cold', 'ours-noproxy', 'ours-memory', 'ours-redis', 'ours-redis-io', 'ours-redis-plain', 'session-redis', 'ours-redis-cluster', 'ours-redis-cluster-io', 'session-redis-cluster']
/** Cookie-mode peers that ours is compared with on every route. */
export const COOKIE_PEERS = ['secure-session', 'iron', 'node-fernet']
/** The session lives in a store and the cookie holds only (a token of) its id. */
export const STORE_VARIANTS = ['ours-memory', 'ours-redis', 'ours-redis-io', 'ours-redis-plain', 'session-redis', 'ours-redis-cluster', 'ours-redis-cluster-io', 'session-redis-cluster']
/** Variants that need the harness's redis-server; skipped, with a reason, without one. */
export const REDIS_VARIANTS = ['ours-redis', 'ours-redis-io', 'ours-redis-plain', 'session-redis']
/**
 * Variants on the harness's 3-master Redis Cluster. Measured only when asked for (--cluster, or
 * named in --variants): starting the cluster and three more variants would lengthen every run,
 * CI's smoke run included. Skipped, with a reason, without redis-server or redis-cli.
 */
export const REDIS_CLUSTER_VARIANTS = ['ours-redis-cluster', 'ours-redis-cluster-io', 'session-redis-cluster']
/** @fastify/session + connect-redis: it sets the same signed id on every request (rolling). */
export const FASTIFY_SESSION_VARIANTS = ['session-redis', 'session-redis-cluster']
/** Key prefixes in Redis, one per variant, so that no variant reads or scans another's keys. */
export const REDIS_PREFIX = {
  'ours-redis': 'bench:ours:',
  'ours-redis-io': 'bench:io:',
  'ours-redis-plain': 'bench:plain:',
  'session-redis': 'bench:fsess:',
  'ours-redis-cluster': 'bench:cl-ours:',
  'ours-redis-cluster-io': 'bench:cl-io:',
  'session-redis-cluster': 'bench:cl-fsess:'
}
/**
 * Variants that answer one question about the read path, measured on /read only to keep the
 * run's length: ours-cold (no verified-token cache, every read decrypts) and ours-noproxy
 * (Session without its Proxy).
 */
export const READ_ONLY_VARIANTS = ['ours-cold', 'ours-noproxy']
export const VARIANT_LABELS = {
  bare: 'bare (@fastify/cookie only)',
  ours: 'ours (fastify-encrypted-session)',
  'secure-session': '@fastify/secure-session',
  iron: 'iron-session seal/unseal',
  'node-fernet': 'node:crypto Fernet',
  'ours-cold': 'ours, cacheSize 0 (cold read)',
  'ours-noproxy': 'ours, Session without Proxy',
  'ours-memory': 'ours, store: MemoryStore',
  'ours-redis': 'ours, store: RedisStore',
  'ours-redis-io': 'ours, store: RedisStore on ioredis',
  'ours-redis-plain': 'ours, store: RedisStore, encryptStore: false',
  'session-redis': '@fastify/session + connect-redis',
  'ours-redis-cluster': 'ours, RedisStore on a Redis Cluster',
  'ours-redis-cluster-io': 'ours, RedisStore on an ioredis Cluster',
  'session-redis-cluster': '@fastify/session + connect-redis, Cluster'
}
export const SESSION_ROUTES = ['untouched', 'read', 'write']
/**
 * /write again, but each connection visits many sessions in turn, so that a session is written
 * about once a second or less, as on a site with many users: what a write costs when nothing of
 * the session's last second can be reused. Store variants only (a cookie-mode write seals its
 * token every time anyway).
 */
export const SPREAD_ROUTE = 'write-many'
export const STORE_ROUTES = [...SESSION_ROUTES, SPREAD_ROUTE]

/** The routes a variant is measured on. */
export const routesOf = (variant) => variant === 'bare'
  ? ['bare']
  : READ_ONLY_VARIANTS.includes(variant) ? ['read'] : STORE_VARIANTS.includes(variant) ? STORE_ROUTES : SESSION_ROUTES

/** The server's path for a measured route. */
export const pathOf = (route) => route === SPREAD_ROUTE ? 'write' : route

/** The body each route answers with for the pre-minted session, checked on every request. */
export const EXPECTED_BODY = {
  bare: JSON.stringify({ ok: true }),
  untouched: JSON.stringify({ ok: true }),
  read: JSON.stringify({ name: USER.name }),
  write: JSON.stringify({ name: USER.name, visits: VISITS + 1 })
}

/** JSON text of exactly `bytes` bytes, shaped like a session that grew. */
export function jsonOfSize (bytes) {
  // The session without its email, padded with a notes string: 93 bytes at the least.
  const base = { user: { id: USER.id, name: USER.name, roles: [...USER.roles] }, visits: VISITS, notes: '' }
  const empty = JSON.stringify(base).length
  if (bytes < empty) throw new RangeError(`jsonOfSize: ${bytes} is below the minimum ${empty}`)
  base.notes = 'x'.repeat(bytes - empty)
  const text = JSON.stringify(base)
  if (Buffer.byteLength(text) !== bytes) throw new Error('jsonOfSize: size mismatch')
  return text
}

/**
 * A body check for /write in store mode, one per connection: the store, not the cookie, holds
 * visits, so each answer must be the one before it plus one (the first one above VISITS).
 * A lost or doubled write on that connection's session shows up as an unexpected body.
 */
export function storeWriteCheck () {
  let last
  return (body) => {
    let answer
    try {
      answer = JSON.parse(body)
    } catch {
      return false
    }
    // The same text as the cookie variants' /write answer, but for the count.
    if (body !== JSON.stringify({ name: USER.name, visits: answer?.visits }) || !Number.isSafeInteger(answer.visits)) return false
    const visits = answer.visits
    const ok = last === undefined ? visits > VISITS : visits === last + 1
    last = visits
    return ok
  }
}

export function median (values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** A small seeded PRNG (mulberry32), so a run's interleaving order can be reproduced. */
export function prng (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function shuffle (items, random) {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}
