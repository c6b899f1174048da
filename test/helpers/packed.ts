// The package as a user gets it: the tarball `npm pack` makes of the built dist/, installed into
// a new project, and child processes run there as a user's shell would run them, each bounded by
// a timeout and stopped in teardown.
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'

export const root = join(import.meta.dirname, '..', '..')

/**
 * The environment of a user's shell: ours without what tap and npm add for this run (tap's
 * loader and coverage hooks would slow every child and cover files outside the project; npm's
 * lifecycle variables describe this package, not the user's project).
 */
export function userEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(?:NODE_OPTIONS|NODE_V8_COVERAGE|_?TAP.*|TS_NODE_.*|npm_lifecycle_.*|npm_package_.*|npm_config_local_prefix|npm_command|npm_execpath|npm_node_execpath|INIT_CWD)$/.test(name)) continue
    env[name] = value
  }
  return { ...env, ...extra }
}

/**
 * tap wraps child_process so that every child gets its loader and coverage hooks through
 * NODE_OPTIONS, whatever env we pass: `env -u NODE_OPTIONS` starts the command without them.
 */
function unhooked (command: string, args: string[]): [string, string[]] {
  return ['env', ['-u', 'NODE_OPTIONS', command, ...args]]
}

export interface RunResult { stdout: string, stderr: string }

/** Runs a command to its end; rejects with its output when it fails or outlives `timeout` ms. */
export async function run (command: string, args: string[], options: { cwd: string, env?: NodeJS.ProcessEnv, timeout: number }): Promise<RunResult> {
  return await new Promise((resolve, reject) => {
    execFile(...unhooked(command, args), { cwd: options.cwd, env: options.env ?? userEnv(), timeout: options.timeout, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error !== null) {
        const why = error.killed ? `killed after ${options.timeout} ms` : `exit ${String(error.code)}`
        reject(new Error(`${command} ${args.join(' ')} (${why})\n--- stdout\n${stdout}\n--- stderr\n${stderr}`))
      } else resolve({ stdout, stderr })
    })
  })
}

/**
 * Fails unless dist/ is built and newer than every source: the tarball is packed from it as it
 * is (see packTarball), so a stale build would be tested as if it were the code.
 */
export function assertBuilt (): void {
  const built = join(root, 'dist', 'esm', 'index.js')
  let builtAt: number
  try {
    builtAt = statSync(built).mtimeMs
  } catch {
    throw new Error('dist/ is not built: run `npm run build` first (`npm test` does)')
  }
  const sources = ['index.ts', ...readdirSync(join(root, 'lib'), { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.ts')).map((name) => join('lib', name))]
  const newer = sources.filter((source) => statSync(join(root, source)).mtimeMs > builtAt)
  if (newer.length > 0) throw new Error(`dist/ is older than ${newer.join(', ')}: run \`npm run build\` first (\`npm test\` does)`)
}

/**
 * Packs the package into `dir` and returns the tarball's file name. --ignore-scripts: npm pack
 * would otherwise build (prepare/prepack), and the build starts with `rm -rf dist` while the
 * other test files, run in parallel, load dist/; `npm test` has built it just before.
 */
export async function packTarball (dir: string): Promise<string> {
  assertBuilt()
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: root, env: userEnv(), timeout: 60_000 })
  const [packed] = JSON.parse(stdout) as Array<{ filename: string, files: Array<{ path: string }> }>
  if (packed === undefined || !packed.files.some((file) => file.path === 'dist/esm/index.js')) throw new Error(`npm pack made no tarball with dist/: ${stdout}`)
  return packed.filename
}

export const packageVersion = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version

/** A long-running child (a server), killed in teardown, with what it printed so far. */
export interface Server {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
}

export function startServer (t: Test, command: string, args: string[], options: { cwd: string, env: NodeJS.ProcessEnv }): Server {
  const child = spawn(...unhooked(command, args), { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  // Read both pipes to the end: a full pipe would block the server on its next log line.
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  child.on('error', () => {}) // reported by waitForOutput, through 'exit' or its timeout
  t.teardown(async () => { await stop(child) })
  return { child, stdout: () => stdout, stderr: () => stderr }
}

/** Stops a child with SIGTERM, then SIGKILL if it has not exited within 5 s. */
export async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
  await exited
  clearTimeout(timer)
}

/** Waits until the server's stdout matches `pattern`; rejects if it exits or `timeout` ms pass. */
export async function waitForOutput (server: Server, pattern: RegExp, timeout: number): Promise<RegExpExecArray> {
  return await new Promise((resolve, reject) => {
    const check = (): void => {
      const match = pattern.exec(server.stdout())
      if (match !== null) { done(); resolve(match) }
    }
    const fail = (why: string): void => {
      done()
      reject(new Error(`${why}\n--- stdout\n${server.stdout()}\n--- stderr\n${server.stderr()}`))
    }
    const onExit = (code: number | null, signal: string | null): void => { fail(`exited (${String(code ?? signal)}) before printing ${String(pattern)}`) }
    const onError = (error: Error): void => { fail(`could not start: ${error.message}`) }
    const timer = setTimeout(() => { fail(`printed no ${String(pattern)} within ${timeout} ms`) }, timeout)
    const done = (): void => {
      clearTimeout(timer)
      server.child.stdout?.off('data', check)
      server.child.off('exit', onExit)
      server.child.off('error', onError)
    }
    server.child.stdout?.on('data', check)
    server.child.once('exit', onExit)
    server.child.once('error', onError)
    check()
    if (server.child.exitCode !== null || server.child.signalCode !== null) onExit(server.child.exitCode, server.child.signalCode)
  })
}
