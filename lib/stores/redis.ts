// Sessions in Redis, shared by every server: each session is a hash { v: version, d: data }
// that Redis itself expires (PEXPIRE), written by a Lua script so that "write only if still the
// version read" is one atomic step. Revocation records are hashes like sessions.
// The client is the app's own node-redis client (package `redis`, version 4 or later): this
// module imports nothing of it, so cookie-only users never load a Redis client.
import type { PutResult, SessionStore, StoredSession } from './store.js'

/** What of a node-redis client the store uses: its raw command interface. */
export interface RedisClientLike {
  sendCommand: (args: string[]) => Promise<unknown>
  on?: (event: 'error', listener: (error: Error) => void) => unknown
}

export interface RedisStoreOptions {
  client: RedisClientLike
  /** Prefix of every key the store writes; default 'fes:'. */
  prefix?: string
}

// Every script touches one key, so every command runs on Redis Cluster as on one server, and
// none does more work for a user with many sessions than for one with a single session. (The
// per-user sets `u:` of earlier releases are no longer read or written: they expire with the
// sessions they listed.)

// KEYS[1] session. ARGV: expected version ('' for a new session), data, ttl in ms.
const PUT = `
local v = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] == '' then
  if v then return {0, v, redis.call('HGET', KEYS[1], 'd')} end
elseif v ~= ARGV[1] then
  if not v then return {0} end
  return {0, v, redis.call('HGET', KEYS[1], 'd')}
end
local version = (tonumber(v) or 0) + 1
redis.call('HSET', KEYS[1], 'v', version, 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, version}
`
// KEYS[1] session. ARGV: ttl in ms.
const TOUCH = "return redis.call('PEXPIRE', KEYS[1], ARGV[1])"
// KEYS[1] session.
const DESTROY = "return redis.call('DEL', KEYS[1])"

interface Script {
  source: string
  sha: Promise<string>
}

async function sha1 (source: string): Promise<string> {
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-1', new TextEncoder().encode(source)))
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('')
}

export class RedisStore implements SessionStore {
  readonly #client: RedisClientLike
  readonly #sessions: string
  readonly #scripts = new Map<string, Script>()

  constructor (options: RedisStoreOptions) {
    const { client, prefix = 'fes:' } = options ?? {}
    if (typeof client?.sendCommand !== 'function') {
      throw new TypeError('RedisStore needs { client }: a connected node-redis client (createClient() from the `redis` package)')
    }
    if (typeof prefix !== 'string') throw new TypeError('RedisStore: prefix must be a string')
    this.#client = client
    this.#sessions = `${prefix}s:`
    // A client without an 'error' listener throws its connection errors and ends the process;
    // with this one a Redis outage is a 503 (the command's own error is logged with it), and the
    // app's own listeners still hear of it.
    client.on?.('error', () => {})
  }

  async #run (source: string, keys: string[], args: string[]): Promise<unknown> {
    let script = this.#scripts.get(source)
    if (script === undefined) this.#scripts.set(source, script = { source, sha: sha1(source) })
    const tail = [String(keys.length), ...keys, ...args]
    try {
      return await this.#client.sendCommand(['EVALSHA', await script.sha, ...tail])
    } catch (error) {
      // Redis forgets scripts on a restart or SCRIPT FLUSH: send the source, which it caches again.
      if (!/NOSCRIPT/.test(String((error as Error)?.message))) throw error
      return await this.#client.sendCommand(['EVAL', source, ...tail])
    }
  }

  async get (id: string): Promise<StoredSession | undefined> {
    // v and d are always written together, in one script.
    const [version, data] = await this.#client.sendCommand(['HMGET', this.#sessions + id, 'v', 'd']) as [string | null, string | null]
    return data === null ? undefined : { data, version: Number(version) }
  }

  async put (id: string, data: string, expected: number | null, ttl: number): Promise<PutResult> {
    const reply = await this.#run(PUT, [this.#sessions + id], [expected === null ? '' : String(expected), data, String(Math.ceil(ttl))]) as [number, ...Array<string | number>]
    if (reply[0] === 1) return { ok: true, version: Number(reply[1]) }
    return { ok: false, current: reply.length === 1 ? undefined : { version: Number(reply[1]), data: String(reply[2]) } }
  }

  async touch (id: string, ttl: number): Promise<boolean> {
    return await this.#run(TOUCH, [this.#sessions + id], [String(Math.ceil(ttl))]) === 1
  }

  async destroy (id: string): Promise<boolean> {
    return await this.#run(DESTROY, [this.#sessions + id], []) === 1
  }
}
