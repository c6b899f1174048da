// The Redis that the store variants use: a redis-server of the benchmark's own, on a free
// loopback port, in a temporary directory, persisting nothing, and stopped when the run ends,
// also when it fails. The harness talks to it in raw RESP (PING, FLUSHALL, DBSIZE, INFO), so
// that it needs no client library and no connection of its own to keep alive.
import { spawn } from 'node:child_process'
import { accessSync, constants, mkdtempSync, rmSync, statSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

const isExecutable = (file) => {
  try {
    accessSync(file, constants.X_OK)
    return statSync(file).isFile()
  } catch {
    return false
  }
}

function onPath (name) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue
    const candidate = path.join(dir, name)
    if (isExecutable(candidate)) return candidate
  }
  return null
}

/**
 * The redis-server to run: BENCH_REDIS_SERVER when set (a path, or `none` to act as if there
 * were none), else the first on PATH. { path } or { path: null, reason }.
 */
export function findRedisServer () {
  const chosen = process.env.BENCH_REDIS_SERVER
  if (chosen !== undefined && chosen !== '') {
    if (chosen === 'none') return { path: null, reason: 'BENCH_REDIS_SERVER=none' }
    return isExecutable(chosen) ? { path: chosen } : { path: null, reason: `BENCH_REDIS_SERVER=${chosen} is not an executable file` }
  }
  const found = onPath('redis-server')
  return found !== null ? { path: found } : { path: null, reason: 'redis-server is not on PATH (Debian/Ubuntu: apt-get install redis-server)' }
}

/**
 * The redis-cli that joins cluster nodes: BENCH_REDIS_CLI when set (a path, or `none`), else
 * the one beside `serverPath` (a redis-server named by path comes with its own tools), else the
 * first on PATH. { path } or { path: null, reason }.
 */
export function findRedisCli (serverPath) {
  const chosen = process.env.BENCH_REDIS_CLI
  if (chosen !== undefined && chosen !== '') {
    if (chosen === 'none') return { path: null, reason: 'BENCH_REDIS_CLI=none' }
    return isExecutable(chosen) ? { path: chosen } : { path: null, reason: `BENCH_REDIS_CLI=${chosen} is not an executable file` }
  }
  const beside = serverPath ? path.join(path.dirname(serverPath), 'redis-cli') : null
  if (beside !== null && isExecutable(beside)) return { path: beside }
  const found = onPath('redis-cli')
  return found !== null ? { path: found } : { path: null, reason: 'redis-cli is not on PATH (Debian/Ubuntu: apt-get install redis-tools)' }
}

function encode (args) {
  let out = `*${args.length}\r\n`
  for (const arg of args) out += `$${Buffer.byteLength(String(arg))}\r\n${arg}\r\n`
  return out
}

/** One RESP2 reply from the start of `buffer`: { value, end }, or undefined when incomplete. */
function parseReply (buffer, start = 0) {
  const lineEnd = buffer.indexOf('\r\n', start)
  if (lineEnd === -1) return undefined
  const type = String.fromCharCode(buffer[start])
  const line = buffer.toString('utf8', start + 1, lineEnd)
  const next = lineEnd + 2
  if (type === '+') return { value: line, end: next }
  if (type === '-') return { value: new Error(line), end: next }
  if (type === ':') return { value: Number(line), end: next }
  if (type === '$') {
    const length = Number(line)
    if (length < 0) return { value: null, end: next }
    if (buffer.length < next + length + 2) return undefined
    return { value: buffer.toString('utf8', next, next + length), end: next + length + 2 }
  }
  if (type === '*') {
    const count = Number(line)
    const values = []
    let at = next
    for (let i = 0; i < count; i++) {
      const item = parseReply(buffer, at)
      if (item === undefined) return undefined
      values.push(item.value)
      at = item.end
    }
    return { value: count < 0 ? null : values, end: at }
  }
  throw new Error(`redis: unexpected reply type ${JSON.stringify(type)}`)
}

/** Sends one command on a connection of its own; resolves to the reply, rejects on an error reply. */
export function redisCommand (port, args, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    let buffer = Buffer.alloc(0)
    const finish = (error, value) => {
      clearTimeout(timer)
      socket.destroy()
      if (error) reject(error)
      else resolve(value)
    }
    const timer = setTimeout(() => finish(new Error(`redis: no answer to ${args[0]} within ${timeoutMs} ms`)), timeoutMs)
    socket.on('connect', () => socket.write(encode(args)))
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk])
      let reply
      try {
        reply = parseReply(buffer)
      } catch (error) {
        finish(error)
        return
      }
      if (reply === undefined) return
      if (reply.value instanceof Error) finish(reply.value)
      else finish(null, reply.value)
    })
    socket.on('error', (error) => finish(error))
  })
}

function freePort () {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Starts redis-server and waits for its PING. The port is free when chosen but could be taken
 * before redis binds it, so a server that exits at start is tried again on another port.
 * `extra`: more redis-server arguments (cluster mode); relative paths in them (the cluster's
 * nodes.conf) land in the temporary directory, which is the server's working directory.
 */
export async function startRedis (executable, { startTimeoutMs = 10_000, extra = [] } = {}) {
  let lastError
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-redis-'))
    const port = await freePort()
    const child = spawn(executable, [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
      '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'no',
      ...extra
    ], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk) => { output = (output + chunk).slice(-4000) })
    child.stderr.on('data', (chunk) => { output = (output + chunk).slice(-4000) })
    let exited = null
    const exit = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve(exited ??= { code, signal }))
      // A spawn failure (no such file, no permission) may come without an 'exit'.
      child.once('error', (error) => resolve(exited ??= { error: error.message }))
    })
    const removeDir = () => rmSync(dir, { recursive: true, force: true })
    // Whatever ends the harness, this server and its directory go with it.
    const onExit = () => {
      if (exited === null) child.kill('SIGKILL')
      removeDir()
    }
    process.on('exit', onExit)
    const started = Date.now()
    let ready = false
    while (exited === null && Date.now() - started < startTimeoutMs) {
      try {
        if (await redisCommand(port, ['PING'], 500) === 'PONG') {
          ready = true
          break
        }
      } catch {}
      await sleep(50)
    }
    if (!ready) {
      if (exited === null) child.kill('SIGKILL')
      await exit
      process.off('exit', onExit)
      removeDir()
      lastError = new Error(`redis-server did not answer PING on port ${port} (exit ${JSON.stringify(exited)}): ${output.trim().split('\n').slice(-3).join(' | ')}`)
      continue
    }
    const info = await redisCommand(port, ['INFO', 'server'])
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown'
    return {
      port,
      pid: child.pid,
      url: `redis://127.0.0.1:${port}`,
      version,
      executable,
      command: (args) => redisCommand(port, args),
      get exited () { return exited },
      async stop () {
        if (exited === null) {
          child.kill('SIGTERM')
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
          await exit
          clearTimeout(timer)
        }
        process.off('exit', onExit)
        removeDir()
      }
    }
  }
  throw lastError ?? new Error('redis-server did not start')
}
