// Real Redis (Debian's redis-server) and PostgreSQL (Debian's postgresql) for the session store
// tests. Every test starts its own server on a free loopback port in its own temp dir and stops it
// in teardown, so nothing depends on a system service or on what another test left behind.
// Where a binary is missing, callers skip with the reason; REQUIRE_STORES=1 (set by .ci/run)
// turns that skip into a failure, as REQUIRE_PYTHON_INTEROP=1 does for Python.
// REDIS_SERVER_BIN and POSTGRES_BIN_DIR point at other builds than Debian's.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { accessSync, constants, readdirSync, realpathSync, rmSync } from 'node:fs'
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect, createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import type { Test } from 'tap'

export const requireStores = process.env.REQUIRE_STORES === '1'

// Bounds, not expectations: a healthy server takes well under a second, a slow CI box a few.
const START_TIMEOUT = 20_000
const STOP_TIMEOUT = 10_000
const LOG_LIMIT = 32 * 1024
const PORT_ATTEMPTS = 3

function executable (file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

function onPath (name: string): string | undefined {
  return (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, name)).find(executable)
}

export const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? onPath('redis-server') ?? '/usr/bin/redis-server'
export const REDIS_CLI = process.env.REDIS_CLI_BIN ?? onPath('redis-cli') ?? join(dirname(REDIS_SERVER), 'redis-cli')

// Debian installs each major side by side under /usr/lib/postgresql and puts only wrappers (or,
// here, a pg_ctl link) on PATH, so look there first and take the newest major.
function postgresBinDir (): string | undefined {
  const dirs: string[] = []
  if (process.env.POSTGRES_BIN_DIR !== undefined) {
    dirs.push(process.env.POSTGRES_BIN_DIR)
  } else {
    let majors: string[] = []
    try {
      majors = readdirSync('/usr/lib/postgresql').filter((name) => /^\d+(\.\d+)?$/.test(name))
    } catch {}
    majors.sort((a, b) => Number(b) - Number(a))
    dirs.push(...majors.map((major) => `/usr/lib/postgresql/${major}/bin`))
    const pgCtl = onPath('pg_ctl')
    if (pgCtl !== undefined) dirs.push(dirname(realpathSync(pgCtl)))
  }
  return dirs.find((dir) => executable(join(dir, 'postgres')) && executable(join(dir, 'initdb')))
}

// PostgreSQL refuses to run as root, so under root (CI containers) it runs as Debian's
// `postgres` user, set by spawn itself rather than through runuser/su, which would put a
// wrapper process between us and the server we signal.
function postgresUser (): { uid: number, gid: number } | undefined {
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' })
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' })
  if (uid.status !== 0 || gid.status !== 0) return undefined
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) }
}

const isRoot = (): boolean => process.getuid?.() === 0

function probe (which: 'redis' | 'postgres'): string | undefined {
  if (which === 'redis') {
    const result = spawnSync(REDIS_SERVER, ['--version'], { encoding: 'utf8' })
    if (result.error !== undefined || result.status !== 0) {
      return `${REDIS_SERVER} cannot run (${result.error?.message ?? result.stderr.trim()}); install it with \`apt-get install redis-server\``
    }
    // The cluster is made with redis-cli --cluster create; Debian's redis-server depends on it.
    if (!executable(REDIS_CLI)) return `no ${REDIS_CLI}; install it with \`apt-get install redis-tools\``
    return undefined
  }
  if (postgresBinDir() === undefined) {
    const where = process.env.POSTGRES_BIN_DIR ?? '/usr/lib/postgresql/*/bin nor via pg_ctl on PATH'
    return `no PostgreSQL (postgres and initdb) in ${where}; install it with \`apt-get install postgresql\``
  }
  if (isRoot() && postgresUser() === undefined) {
    return 'running as root and there is no `postgres` user to run PostgreSQL as (it refuses root)'
  }
  return undefined
}

/**
 * Why the server cannot be started here, or undefined when it can.
 * Throws instead when REQUIRE_STORES=1, so a CI run cannot skip the store tests silently.
 */
export function serversMissing (which: 'redis' | 'postgres'): string | undefined {
  const reason = probe(which)
  if (reason !== undefined && requireStores) throw new Error(`REQUIRE_STORES=1 but ${reason}`)
  return reason
}

interface Running {
  child: ChildProcess
  /** Settles once the process is reaped, or when it could not be spawned at all. */
  exited: Promise<void>
  done: () => boolean
  log: () => string
}

const live = new Set<ChildProcess>()
const temps = new Set<string>()
// A test file that crashes or exits without teardown must not leave servers or dirs behind.
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL')
  for (const dir of temps) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
    } catch {}
  }
})

async function tempDir (t: Test, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  temps.add(dir)
  t.teardown(async () => {
    await rm(dir, { recursive: true, force: true, maxRetries: 3 })
    temps.delete(dir)
  })
  return dir
}

function launch (command: string, args: string[], options: SpawnOptions): Running {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  const append = (chunk: Buffer): void => { log = (log + chunk.toString()).slice(-LOG_LIMIT) }
  child.stdout?.on('data', append)
  child.stderr?.on('data', append)
  live.add(child)
  let done = false
  const exited = new Promise<void>((resolve) => {
    // 'exit' comes after the kernel reaped it, so its pid is really gone by then.
    child.once('exit', () => resolve())
    child.once('error', (error) => {
      append(Buffer.from(`spawn ${command}: ${error.message}\n`))
      resolve()
    })
  }).then(() => {
    done = true
    live.delete(child)
  })
  return { child, exited, done: () => done, log: () => log }
}

async function within (promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(resolve, ms, false) })
  try {
    return await Promise.race([promise.then(() => true), timeout])
  } finally {
    clearTimeout(timer)
  }
}

async function terminate (running: Running, signal: NodeJS.Signals): Promise<void> {
  if (!running.done()) running.child.kill(signal)
  if (await within(running.exited, STOP_TIMEOUT)) return
  running.child.kill('SIGKILL')
  if (!await within(running.exited, STOP_TIMEOUT)) {
    throw new Error(`pid ${running.child.pid ?? '?'} survived SIGKILL for ${STOP_TIMEOUT / 1000} s`)
  }
}

class PortTaken extends Error {}

async function waitReady (running: Running, what: string, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT
  for (;;) {
    if (running.done()) {
      const log = running.log()
      const message = `${what} exited (code ${running.child.exitCode ?? running.child.signalCode}) before it was ready; its log:\n${log}`
      throw /address already in use/i.test(log) ? new PortTaken(message) : new Error(message)
    }
    if (await ready()) return
    if (Date.now() > deadline) {
      await terminate(running, 'SIGKILL')
      throw new Error(`${what} was not ready within ${START_TIMEOUT / 1000} s; its log:\n${running.log()}`)
    }
    await sleep(50)
  }
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

// Between freePort() closing its socket and the server binding, another process may take the
// port; the server then exits with "Address already in use" and a fresh port is tried.
async function onFreePort<T> (start: (port: number) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(await freePort())
    } catch (error) {
      if (!(error instanceof PortTaken) || attempt >= PORT_ATTEMPTS) throw error
    }
  }
}

/** Sends a raw PING, so readiness needs no client library; true on +PONG (not -LOADING). */
export async function redisPing (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    let reply = ''
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.on('error', () => done(false))
    socket.on('close', () => done(false))
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk) => {
      reply += chunk.toString()
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'))
    })
  })
}

export interface RedisServer {
  readonly port: number
  readonly url: string
  readonly dir: string
  /** The pid of the latest process started, kept after stop() so a test can check it is gone. */
  readonly pid: number
  /** Stops the server (SIGTERM, then SIGKILL past a bound) and keeps its dir for start(). */
  stop: () => Promise<void>
  /** Starts it again on the same port and dir, to test an outage and the recovery. */
  start: () => Promise<void>
}

export interface RedisOptions {
  /** Persist through an append-only file, so data survives stop() and start(). */
  appendonly?: boolean
  port?: number
  /** A dir the caller owns and removes; by default a temp dir removed in teardown. */
  dir?: string
  /** More redis-server arguments (cluster mode, replicaof). */
  extra?: string[]
}

export async function startRedis (t: Test, options: RedisOptions = {}): Promise<RedisServer> {
  const appendonly = options.appendonly ?? false
  const dir = options.dir ?? await tempDir(t, 'redis-')
  let running: Running | undefined

  const startOn = async (port: number): Promise<number> => {
    const args = [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
      '--appendonly', appendonly ? 'yes' : 'no', '--daemonize', 'no', '--protected-mode', 'no',
      '--logfile', '',
      // Without persistence nothing should touch the disk; with it, keep Redis's defaults.
      ...(appendonly ? [] : ['--save', '']),
      ...(options.extra ?? [])
    ]
    running = launch(REDIS_SERVER, args, { cwd: dir })
    await waitReady(running, `redis-server on port ${port}`, async () => await redisPing(port))
    return port
  }
  const stop = async (): Promise<void> => {
    if (running !== undefined) await terminate(running, 'SIGTERM')
  }
  t.teardown(stop)

  const port = options.port === undefined ? await onFreePort(startOn) : await startOn(options.port)
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    get pid () { return (running as Running).child.pid as number },
    stop,
    start: async () => {
      if (running !== undefined && !running.done()) return
      await startOn(port)
    }
  }
}

export interface PostgresServer {
  readonly port: number
  /** A password-authenticated (scram-sha-256) login to a database it owns, over TCP. */
  readonly connectionString: string
  readonly dir: string
  readonly pid: number
  /** Fast shutdown (SIGINT), then SIGKILL past a bound. */
  stop: () => Promise<void>
}

async function sql (config: pg.ClientConfig, query: string): Promise<void> {
  const client = new pg.Client({ ...config, connectionTimeoutMillis: 2000 })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query(query)
  } finally {
    await client.end().catch(() => {})
  }
}

export async function startPostgres (t: Test): Promise<PostgresServer> {
  const bin = postgresBinDir()
  if (bin === undefined) throw new Error(probe('postgres'))
  const user = isRoot() ? postgresUser() : undefined
  if (isRoot() && user === undefined) throw new Error(probe('postgres'))
  const as: SpawnOptions = user === undefined ? {} : { uid: user.uid, gid: user.gid }

  const dir = await tempDir(t, 'pg-')
  if (user !== undefined) await chown(dir, user.uid, user.gid)
  const data = join(dir, 'data')
  const superuser = { host: dir, user: 'postgres', database: 'postgres' }

  // Local (socket) logins are trusted for the setup below; TCP logins need the password.
  const initdb = launch(join(bin, 'initdb'), [
    '-D', data, '-U', 'postgres', '-E', 'UTF8', '--no-locale', '--no-sync',
    '--auth-local=trust', '--auth-host=scram-sha-256'
  ], { ...as, cwd: dir })
  if (!await within(initdb.exited, START_TIMEOUT)) await terminate(initdb, 'SIGKILL')
  if (initdb.child.exitCode !== 0) throw new Error(`initdb failed; its output:\n${initdb.log()}`)

  let running: Running | undefined
  const stop = async (): Promise<void> => {
    if (running !== undefined) await terminate(running, 'SIGINT')
  }
  t.teardown(stop)

  const port = await onFreePort(async (port) => {
    running = launch(join(bin, 'postgres'), [
      '-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1',
      // Throwaway data: durability only slows the tests down.
      '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'
    ], { ...as, cwd: dir })
    await waitReady(running, `postgres on port ${port}`, async () => {
      try {
        await sql({ ...superuser, port }, 'select 1')
        return true
      } catch {
        return false
      }
    })
    return port
  })

  const password = randomBytes(12).toString('hex')
  await sql({ ...superuser, port }, `create role session_test login password '${password}'`)
  await sql({ ...superuser, port }, 'create database session_test owner session_test')

  return {
    port,
    connectionString: `postgres://session_test:${password}@127.0.0.1:${port}/session_test`,
    dir,
    get pid () { return (running as Running).child.pid as number },
    stop
  }
}


/** Runs redis-cli (Debian's redis-tools, which redis-server depends on) and resolves to its stdout. */
export async function redisCli (args: string[], timeoutMs = START_TIMEOUT): Promise<string> {
  const running = launch(REDIS_CLI, args, {})
  let stdout = ''
  running.child.stdout?.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  if (!await within(running.exited, timeoutMs)) await terminate(running, 'SIGKILL')
  if (running.child.exitCode !== 0) throw new Error(`redis-cli ${args.join(' ')} failed (${running.child.exitCode ?? running.child.signalCode}):\n${running.log()}`)
  return stdout
}

async function until (what: string, ready: () => Promise<boolean>, timeoutMs = START_TIMEOUT): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await ready().catch(() => false)) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs / 1000} s`)
    await sleep(100)
  }
}

export interface RedisCluster {
  /** Its masters, one slot range each; stop() and start() one of them for an outage. */
  readonly masters: RedisServer[]
  /** host/port pairs to give a cluster client as its root nodes. */
  readonly nodes: Array<{ host: string, port: number }>
  /** Resolves once every node reports cluster_state:ok (after a restart, say). */
  healthy: () => Promise<void>
}

/**
 * A Redis Cluster of `size` masters and no replicas (as `redis-cli --cluster create` makes it),
 * each node a redis-server of its own, persisted (appendonly) so a stopped master comes back
 * with its data and its slots.
 */
export async function startRedisCluster (t: Test, size = 3): Promise<RedisCluster> {
  const masters = await Promise.all(Array.from({ length: size }, async () => await startRedis(t, {
    appendonly: true,
    extra: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '1000']
  })))
  await redisCli(['--cluster', 'create', ...masters.map((master) => `127.0.0.1:${master.port}`), '--cluster-replicas', '0', '--cluster-yes'])
  const healthy = async (): Promise<void> => {
    for (const master of masters) {
      await until(`the cluster node on port ${master.port} was not ok`, async () => /cluster_state:ok/.test(await redisCli(['-p', String(master.port), 'cluster', 'info'], 2000)))
    }
  }
  await healthy()
  return { masters, nodes: masters.map((master) => ({ host: '127.0.0.1', port: master.port })), healthy }
}

export interface RedisSentinelSetup {
  /** The name Sentinel monitors the primary under. */
  readonly name: string
  readonly sentinel: { host: string, port: number }
  readonly primary: RedisServer
  readonly replica: RedisServer
  /** Stops the primary and resolves once Sentinel has promoted the replica. */
  failover: () => Promise<void>
}

/** A primary, a replica of it, and one Sentinel (quorum 1) that promotes the replica when the primary dies. */
export async function startRedisSentinel (t: Test): Promise<RedisSentinelSetup> {
  const name = 'sessions'
  const primary = await startRedis(t)
  const replica = await startRedis(t, { extra: ['--replicaof', '127.0.0.1', String(primary.port)] })
  await until('the replica did not sync', async () => /master_link_status:up/.test(await redisCli(['-p', String(replica.port), 'info', 'replication'], 2000)))
  const dir = await tempDir(t, 'sentinel-')
  let running: Running | undefined
  t.teardown(async () => { if (running !== undefined) await terminate(running, 'SIGTERM') })
  const port = await onFreePort(async (port) => {
    const config = join(dir, 'sentinel.conf')
    await writeFile(config, [
      `port ${port}`, 'bind 127.0.0.1', 'protected-mode no', `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${primary.port} 1`,
      `sentinel down-after-milliseconds ${name} 1000`,
      `sentinel failover-timeout ${name} 10000`
    ].join('\n') + '\n')
    // redis-server in Sentinel mode: the same binary as Debian's redis-sentinel package runs.
    running = launch(REDIS_SERVER, [config, '--sentinel'], { cwd: dir })
    await waitReady(running, `redis sentinel on port ${port}`, async () => await redisPing(port))
    return port
  })
  const replicas = async (): Promise<string> => await redisCli(['-p', String(port), 'sentinel', 'replicas', name], 2000)
  await until('Sentinel did not find the replica', async () => (await replicas()).includes(String(replica.port)))
  return {
    name,
    sentinel: { host: '127.0.0.1', port },
    primary,
    replica,
    async failover () {
      await primary.stop()
      await until('Sentinel did not promote the replica', async () => {
        const address = await redisCli(['-p', String(port), 'sentinel', 'get-master-addr-by-name', name], 2000)
        return address.includes(String(replica.port))
      }, 30_000)
      await until('the promoted replica does not take writes', async () => /role:master/.test(await redisCli(['-p', String(replica.port), 'info', 'replication'], 2000)))
    }
  }
}
