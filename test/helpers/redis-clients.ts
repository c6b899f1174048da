// Clients of both Redis libraries on each topology, as an app makes them: node-redis
// (createClient, createCluster, createSentinel) and ioredis (Redis, Redis with sentinels,
// Cluster), each reconnecting quickly so that tests of an outage do not wait long, and each
// closed in teardown.
import type { Test } from 'tap'
import { createClient, createCluster, createSentinel } from 'redis'
import { Cluster, Redis } from 'ioredis'
import type { RedisClientLike } from '../../lib/stores/redis-client.js'

export const CLIENTS = ['node-redis', 'ioredis'] as const
export type ClientName = typeof CLIENTS[number]

export type Topology =
  | { kind: 'standalone', port: number }
  | { kind: 'sentinel', name: string, sentinel: { host: string, port: number } }
  | { kind: 'cluster', nodes: Array<{ host: string, port: number }> }

const backoff = (retries: number): number => Math.min(50 * retries, 500)

async function ready (client: Redis | Cluster): Promise<void> {
  if (client.status === 'ready') return
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve)
    client.once('end', () => { reject(new Error('ioredis ended before it was ready')) })
  })
}

/** A connected client of `name` on `topology`, closed in t's teardown. */
export async function connectRedis (t: Test, name: ClientName, topology: Topology): Promise<RedisClientLike> {
  if (name === 'ioredis') {
    const client = topology.kind === 'cluster'
      ? new Cluster(topology.nodes, { clusterRetryStrategy: backoff })
      : topology.kind === 'sentinel'
        ? new Redis({ sentinels: [topology.sentinel], name: topology.name, retryStrategy: backoff, sentinelRetryStrategy: backoff })
        : new Redis({ host: '127.0.0.1', port: topology.port, retryStrategy: backoff })
    client.on('error', () => {})
    t.teardown(() => { client.disconnect() })
    await ready(client)
    return client
  }
  const socket = { reconnectStrategy: backoff }
  if (topology.kind === 'cluster') {
    const client = createCluster({ rootNodes: topology.nodes.map(({ host, port }) => ({ socket: { host, port } })), defaults: { socket } })
    client.on('error', () => {})
    await client.connect()
    t.teardown(async () => { await client.destroy() })
    return client
  }
  if (topology.kind === 'sentinel') {
    const client = createSentinel({ name: topology.name, sentinelRootNodes: [topology.sentinel], nodeClientOptions: { socket }, sentinelClientOptions: { socket } })
    client.on('error', () => {})
    await client.connect()
    t.teardown(async () => { await client.destroy() })
    return client
  }
  const client = createClient({ socket: { host: '127.0.0.1', port: topology.port, ...socket } })
  client.on('error', () => {})
  await client.connect()
  t.teardown(() => { client.destroy() })
  return client
}
