// The Redis clients RedisStore runs on, told apart by their shape when the store is made, and
// one small interface over them. Their raw-command calls differ: node-redis's single client
// takes the command's words, its cluster takes the key to route by first, its Sentinel client a
// read-only flag first; ioredis's Redis and Cluster take `call(name, ...args)` and route by the
// command's keys themselves. A client that fits none is refused at once, with what is accepted,
// rather than failing on the first request. Nothing of either package is imported: the app
// brings its own client, and cookie-only users load none.

/** A client RedisStore accepts: node-redis (the `redis` package, v4 or later) or ioredis. */
export type RedisClientLike =
  /** node-redis: createClient(), createCluster(), createSentinel(). */
  | { sendCommand: (...args: any[]) => Promise<unknown>, on?: (...args: any[]) => unknown }
  /** ioredis: new Redis(), new Cluster(). */
  | { call: (...args: any[]) => Promise<unknown>, on?: (...args: any[]) => unknown }

export const ACCEPTED_CLIENTS = 'a connected node-redis client (createClient(), createCluster() or createSentinel() from the `redis` package) or an ioredis client (new Redis() or new Cluster() from `ioredis`)'

/** What RedisStore asks of Redis: each call touches keys of one hash slot, so it runs on a cluster. */
export interface RedisCommands {
  /** Which client this is, for messages. */
  readonly kind: string
  /** One command on one key: `name key ...args`. */
  command: (name: string, key: string, args: string[]) => Promise<unknown>
  /** A Lua script by its SHA-1, sent again in full when Redis forgot it (a restart, SCRIPT FLUSH). */
  script: (source: string, keys: string[], args: string[]) => Promise<unknown>
}

/** Sends one whole command (`[name, ...args]`), routed by `key` where the client needs telling. */
type Send = (key: string, words: string[]) => Promise<unknown>

const has = (value: object, name: string): boolean => typeof (value as Record<string, unknown>)[name] === 'function'

function recognise (client: unknown): { kind: string, send: Send } | undefined {
  if (typeof client !== 'object' || client === null) return undefined
  type Raw = (...args: unknown[]) => Promise<unknown>
  const any = client as { call: Raw, sendCommand: Raw }
  // ioredis first: its clients have a sendCommand too, which takes its own Command objects.
  if (has(client, 'call') && typeof (client as { isCluster?: unknown }).isCluster === 'boolean') {
    const kind = (client as { isCluster: boolean }).isCluster ? 'ioredis Cluster' : 'ioredis Redis'
    return { kind, send: async (_key, [name, ...args]) => await any.call(name, ...args) }
  }
  if (!has(client, 'sendCommand')) return undefined
  if (has(client, 'getSlotMaster') && has(client, 'getMasters')) {
    return { kind: 'node-redis cluster', send: async (key, words) => await any.sendCommand(key, false, words) }
  }
  if (has(client, 'getMasterNode') && has(client, 'getSentinelNode')) {
    return { kind: 'node-redis Sentinel', send: async (_key, words) => await any.sendCommand(false, words) }
  }
  if (has(client, 'connect') && typeof (client as { isOpen?: unknown }).isOpen === 'boolean') {
    return { kind: 'node-redis client', send: async (_key, words) => await any.sendCommand(words) }
  }
  return undefined
}

function describe (client: unknown): string {
  if (typeof client !== 'object' || client === null) return typeof client
  const name = (client as { constructor?: { name?: unknown } }).constructor?.name
  return typeof name === 'string' && name !== '' && name !== 'Object' ? `a ${name}` : 'an object of another shape'
}

async function sha1 (source: string): Promise<string> {
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-1', new TextEncoder().encode(source)))
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('')
}

/** Adapts a client the store accepts; throws a TypeError that lists them for anything else. */
export function redisCommands (client: unknown): RedisCommands {
  const recognised = recognise(client)
  if (recognised === undefined) throw new TypeError(`RedisStore needs { client }: ${ACCEPTED_CLIENTS}; got ${describe(client)}`)
  const { kind, send } = recognised
  const shas = new Map<string, Promise<string>>()
  return {
    kind,
    command: async (name, key, args) => await send(key, [name, key, ...args]),
    async script (source, keys, args) {
      let sha = shas.get(source)
      if (sha === undefined) shas.set(source, sha = sha1(source))
      const tail = [String(keys.length), ...keys, ...args]
      // Every key of a call is in one slot, so its first routes it.
      const route = keys[0] as string
      try {
        return await send(route, ['EVALSHA', await sha, ...tail])
      } catch (error) {
        if (!/NOSCRIPT/.test(String((error as Error)?.message))) throw error
        return await send(route, ['EVAL', source, ...tail])
      }
    }
  }
}
