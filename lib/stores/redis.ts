// Sessions in Redis, shared by every server: each session is a hash { v: version, d: data }
// that Redis itself expires (PEXPIRE), written by Lua scripts so that "write only if still the
// version read" is one atomic step; each user's sessions are listed in a set for revocation.
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

// KEYS[1] session, KEYS[2] the user's index (optional). ARGV: expected version ('' for a new
// session), data, ttl in ms, the session id, the session key prefix (to prune the index).
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
if KEYS[2] then
  if ARGV[1] == '' then
    for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
      if redis.call('EXISTS', ARGV[5] .. id) == 0 then redis.call('SREM', KEYS[2], id) end
    end
  end
  redis.call('SADD', KEYS[2], ARGV[4])
  if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
end
return {1, version}
`
// KEYS[1] session, KEYS[2] index (optional). ARGV: ttl in ms, the session id.
const TOUCH = `
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then return 0 end
if KEYS[2] then
  redis.call('SADD', KEYS[2], ARGV[2])
  if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
end
return 1
`
// KEYS[1] session, KEYS[2] index (optional). ARGV: the session id.
const DESTROY = `
if KEYS[2] then redis.call('SREM', KEYS[2], ARGV[1]) end
return redis.call('DEL', KEYS[1])
`
// KEYS[1] index. ARGV: the session key prefix. One step, so that no login slips in between.
const REVOKE = `
local count = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  count = count + redis.call('DEL', ARGV[1] .. id)
end
redis.call('DEL', KEYS[1])
return count
`

export class RedisStore implements SessionStore {
  readonly #redis: RedisCommands
  readonly #sessions: string
  readonly #users: string

  constructor (options: RedisStoreOptions) {
    const { client, prefix = 'fes:' } = options ?? {}
    this.#redis = redisCommands(client)
    if (typeof prefix !== 'string') throw new TypeError('RedisStore: prefix must be a string')
    this.#sessions = `${prefix}s:`
    this.#users = `${prefix}u:`
    // A client without an 'error' listener throws its connection errors and ends the process;
    // with this one a Redis outage is a 503 (the command's own error is logged with it), and the
    // app's own listeners still hear of it.
    client.on?.('error', () => {})
  }

  async #run (source: string, keys: string[], args: string[]): Promise<unknown> {
    return await this.#redis.script(source, keys, args)
  }

  #keys (id: string, user: string | undefined): string[] {
    return user === undefined ? [this.#sessions + id] : [this.#sessions + id, this.#users + user]
  }

  async get (id: string): Promise<StoredSession | undefined> {
    // v and d are always written together, in one script.
    const [version, data] = await this.#redis.command('HMGET', this.#sessions + id, ['v', 'd']) as [string | null, string | null]
    return data === null ? undefined : { data, version: Number(version) }
  }

  async put (id: string, data: string, expected: number | null, ttl: number, user?: string): Promise<PutResult> {
    const reply = await this.#run(PUT, this.#keys(id, user), [expected === null ? '' : String(expected), data, String(Math.ceil(ttl)), id, this.#sessions]) as [number, ...Array<string | number>]
    if (reply[0] === 1) return { ok: true, version: Number(reply[1]) }
    return { ok: false, current: reply.length === 1 ? undefined : { version: Number(reply[1]), data: String(reply[2]) } }
  }

  async touch (id: string, ttl: number, user?: string): Promise<boolean> {
    return await this.#run(TOUCH, this.#keys(id, user), [String(Math.ceil(ttl)), id]) === 1
  }

  async destroy (id: string, user?: string): Promise<boolean> {
    return await this.#run(DESTROY, this.#keys(id, user), [id]) === 1
  }

  async revoke (user: string): Promise<number> {
    return Number(await this.#run(REVOKE, [this.#users + user], [this.#sessions]))
  }
}
