// The Redis Cluster that the cluster variants use: three masters and no replicas, each a
// redis-server of the benchmark's own (bench/redis.js: a free loopback port, a temporary
// directory, nothing persisted, killed when the harness exits), joined by redis-cli. Only the
// node's nodes.conf, which cluster mode cannot do without, is written, to that directory.
import { execFile } from 'node:child_process'
import { redisCommand, startRedis } from './redis.js'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function run (file, args, timeoutMs) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8' }, (error, stdout, stderr) => {
      const output = `${stdout}\n${stderr}`.trim().split('\n').slice(-4).join(' | ')
      if (error) reject(new Error(`${file} ${args.join(' ')} failed (${error.code ?? error.signal})${output ? `: ${output}` : ''}`))
      else resolve(stdout)
    })
  })
}

/**
 * Starts `size` cluster-enabled redis-servers, gives them the 16384 slots with
 * `redis-cli --cluster create`, and resolves once every node's CLUSTER INFO says
 * cluster_state:ok: a client that connects earlier can be told that a slot has no owner.
 */
export async function startRedisCluster (serverPath, cliPath, { size = 3, readyTimeoutMs = 20_000 } = {}) {
  const nodes = []
  try {
    // One after another: at most 2 cores, and each start already waits for its PING.
    for (let i = 0; i < size; i++) {
      nodes.push(await startRedis(serverPath, {
        // node timeout stays at Redis's default (15 s): on a busy 2-core machine a shorter one
        // can mark a starved node as failing in the middle of a measurement.
        extra: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf']
      }))
    }
    await run(cliPath, ['--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', '0', '--cluster-yes'], 30_000)
    const deadline = Date.now() + readyTimeoutMs
    for (const node of nodes) {
      let info = ''
      while (!/cluster_state:ok/.test(info)) {
        if (Date.now() > deadline) throw new Error(`the cluster node on port ${node.port} did not report cluster_state:ok within ${readyTimeoutMs / 1000} s: ${info.trim().split(/\r?\n/).slice(0, 3).join(' ')}`)
        await sleep(100)
        info = await redisCommand(node.port, ['CLUSTER', 'INFO'], 1000).catch((error) => error.message)
      }
    }
  } catch (error) {
    await Promise.all(nodes.map((node) => node.stop()))
    throw error
  }
  const onEvery = (args) => Promise.all(nodes.map((node) => node.command(args)))
  return {
    size,
    version: nodes[0].version,
    executable: serverPath,
    cli: cliPath,
    ports: nodes.map((node) => node.port),
    pids: nodes.map((node) => node.pid),
    /** What a cluster client takes as its root nodes: every master, in case one is slow to answer. */
    rootNodes: nodes.map((node) => ({ host: '127.0.0.1', port: node.port })),
    /** Empties every master: FLUSHALL on a cluster node flushes that node's slots only. */
    async flushAll () { await onEvery(['FLUSHALL']) },
    /** Keys on each master, in the order of `ports`. */
    async dbSizes () { return await onEvery(['DBSIZE']) },
    async keys (pattern) { return (await onEvery(['KEYS', pattern])).flat() },
    async stop () { await Promise.all(nodes.map((node) => node.stop())) }
  }
}
