// Which Redis clients RedisStore takes, told apart by shape at construction, and how each call
// reaches each: real node-redis and ioredis objects (made, not connected) for recognition, small
// fakes of each shape for what is sent. The same store on real servers of every topology is in
// test/store-redis-topologies.test.ts.
import t from 'tap'
import { createClient, createCluster, createSentinel } from 'redis'
import { Cluster, Redis } from 'ioredis'
import { RedisStore } from '../lib/stores/redis.js'
import { redisCommands } from '../lib/stores/redis-client.js'

const ACCEPTED = /createClient\(\), createCluster\(\) or createSentinel\(\) from the `redis` package\) or an ioredis client \(new Redis\(\) or new Cluster\(\)/

t.test('each client a user brings is recognised at construction', async (t) => {
  const ioredis = new Redis({ lazyConnect: true })
  const ioCluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true })
  const ioSentinel = new Redis({ lazyConnect: true, sentinels: [{ host: '127.0.0.1', port: 1 }], name: 'sessions' })
  t.teardown(() => { ioredis.disconnect(); ioCluster.disconnect(); ioSentinel.disconnect() })
  t.equal(redisCommands(createClient()).kind, 'node-redis client')
  t.equal(redisCommands(createCluster({ rootNodes: [{ socket: { host: '127.0.0.1', port: 1 } }] })).kind, 'node-redis cluster')
  t.equal(redisCommands(createSentinel({ name: 'sessions', sentinelRootNodes: [{ host: '127.0.0.1', port: 1 }] })).kind, 'node-redis Sentinel')
  t.equal(redisCommands(ioredis).kind, 'ioredis Redis')
  t.equal(redisCommands(ioSentinel).kind, 'ioredis Redis', 'ioredis through Sentinel is a Redis')
  t.equal(redisCommands(ioCluster).kind, 'ioredis Cluster')
  t.doesNotThrow(() => new RedisStore({ client: ioCluster }))
})

t.test('anything else is refused in the constructor, with what is accepted', async (t) => {
  class LegacyClient { sendCommand (): void {} }
  const refused: Array<[unknown, RegExp]> = [
    [undefined, /got undefined$/],
    [null, /got object$/],
    ['redis://127.0.0.1:6379', /got string$/],
    [{}, /got an object of another shape$/],
    // A bare sendCommand is not enough: which of node-redis's three signatures it has is unknown.
    [{ sendCommand: async () => 1 }, /got an object of another shape$/],
    [Object.create(null), /got an object of another shape$/],
    [new LegacyClient(), /got a LegacyClient$/],
    [new (class {})(), /got an object of another shape$/],
    // ioredis is told by call() and isCluster together.
    [{ call: async () => 1 }, /got an object of another shape$/]
  ]
  for (const [client, got] of refused) {
    t.throws(() => new RedisStore({ client: client as never }), { name: 'TypeError', message: /^RedisStore needs \{ client \}/ })
    t.throws(() => new RedisStore({ client: client as never }), { message: ACCEPTED })
    t.throws(() => new RedisStore({ client: client as never }), { message: got }, `refused, and said: ${got.source}`)
  }
})

/** Fakes of each client's shape that record what each call sent. */
function fakes (reply: (words: unknown[]) => unknown): Record<string, { client: object, sent: unknown[][] }> {
  const record = (sent: unknown[][]) => async (...args: unknown[]) => {
    sent.push(args)
    return await reply(args.flat())
  }
  const made: Record<string, { client: object, sent: unknown[][] }> = {}
  const add = (name: string, build: (send: (...args: unknown[]) => Promise<unknown>) => object): void => {
    const sent: unknown[][] = []
    made[name] = { client: build(record(sent)), sent }
  }
  add('node-redis client', (send) => ({ sendCommand: send, connect () {}, isOpen: true }))
  add('node-redis cluster', (send) => ({ sendCommand: send, getSlotMaster () {}, getMasters () {} }))
  add('node-redis Sentinel', (send) => ({ sendCommand: send, getMasterNode () {}, getSentinelNode () {} }))
  add('ioredis Redis', (send) => ({ call: send, sendCommand () {}, isCluster: false }))
  add('ioredis Cluster', (send) => ({ call: send, sendCommand () {}, isCluster: true }))
  return made
}

t.test('each call reaches each client in its own signature, routed by its key', async (t) => {
  const made = fakes((words) => words.includes('HMGET') ? ['1', 'data'] : 1)
  const expected: Record<string, unknown[]> = {
    'node-redis client': [['HMGET', 'k', 'v', 'd']],
    'node-redis cluster': ['k', false, ['HMGET', 'k', 'v', 'd']],
    'node-redis Sentinel': [false, ['HMGET', 'k', 'v', 'd']],
    'ioredis Redis': ['HMGET', 'k', 'v', 'd'],
    'ioredis Cluster': ['HMGET', 'k', 'v', 'd']
  }
  for (const [kind, { client, sent }] of Object.entries(made)) {
    const redis = redisCommands(client)
    t.equal(redis.kind, kind)
    t.same(await redis.command('HMGET', 'k', ['v', 'd']), ['1', 'data'])
    t.same(sent[0], expected[kind], `${kind}: a command`)
    t.equal(await redis.script('return 1', ['k'], ['a']), 1)
    const script = sent[1] as unknown[]
    const words = script.flat().filter((word) => typeof word === 'string')
    const at = words.indexOf('EVALSHA')
    t.match(words[at + 1], /^[0-9a-f]{40}$/, `${kind}: a script by its SHA-1`)
    t.same(words.slice(at + 2), ['1', 'k', 'a'], 'with its one key and its args')
    if (kind === 'node-redis cluster') t.equal(script[0], 'k', 'routed by its key')
  }
})

t.test('a script Redis forgot is sent in full; other errors are not taken for that', async (t) => {
  let forgotten = true
  const made = fakes((words) => {
    if (words.includes('EVALSHA') && forgotten) throw new Error('NOSCRIPT No matching script. Please use EVAL.')
    if (words.includes('broken')) throw new Error('WRONGTYPE Operation against a key holding the wrong kind of value')
    return words.includes('EVAL') ? 'by source' : 'by sha'
  })
  for (const [kind, { client, sent }] of Object.entries(made)) {
    forgotten = true
    const redis = redisCommands(client)
    t.equal(await redis.script('return 2', ['k'], []), 'by source', `${kind}: NOSCRIPT, then EVAL`)
    t.ok((sent[1] as unknown[]).flat().includes('return 2'), 'with the source')
    forgotten = false
    t.equal(await redis.script('return 2', ['k'], []), 'by sha', 'and by its sha again once Redis has it')
    await t.rejects(redis.script('return 2', ['broken'], []), /WRONGTYPE/)
    t.equal(sent.length, 4, 'no second try for another error')
  }
})
