// Sessions in Redis, shared by every server: each session is a hash { v: version, d: data }
// that Redis itself expires (PEXPIRE), written by a Lua script so that "write only if still the
// version read" is one atomic step. Revocation records are hashes like sessions.
// The client is the app's own, node-redis or ioredis on one server, Sentinel or a cluster
// (redis-client.ts tells them apart): this module imports nothing of either, so cookie-only
// users never load a Redis client.
import type { PutResult, SessionStore, StoredSession } from './store.js'
import { type RedisClientLike, type RedisCommands, redisCommands } from './redis-client.js'

export type { RedisClientLike } from './redis-client.js'

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

export class RedisStore implements SessionStore {
  readonly #redis: RedisCommands
  readonly #sessions: string

  constructor (options: RedisStoreOptions) {
    const { client, prefix = 'fes:' } = options ?? {}
    this.#redis = redisCommands(client)
    if (typeof prefix !== 'string') throw new TypeError('RedisStore: prefix must be a string')
    this.#sessions = `${prefix}s:`
    // A client without an 'error' listener throws its connection errors and ends the process;
    // with this one a Redis outage is a 503 (the command's own error is logged with it), and the
    // app's own listeners still hear of it.
    client.on?.('error', () => {})
  }

  async #run (source: string, keys: string[], args: string[]): Promise<unknown> {
    return await this.#redis.script(source, keys, args)
  }

  async get (id: string): Promise<StoredSession | undefined> {
    // v and d are always written together, in one script.
    const [version, data] = await this.#redis.command('HMGET', this.#sessions + id, ['v', 'd']) as [string | null, string | null]
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
