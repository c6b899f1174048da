// Starts a test server fixture in a child process of its own and waits for the port it prints
// on its first line of stdout. A child that exits first, or says nothing within the bound, fails
// the test at once with what it wrote, instead of leaving it to wait.
import type { Test } from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'

export interface ChildServer {
  port: number
  /** Everything the child wrote to stderr (and to stdout after its port). */
  output: () => string
  alive: () => boolean
}

export async function startChildServer (t: Test, fixture: string, env: Record<string, string>, timeoutMs = 20_000): Promise<ChildServer> {
  const child = spawn(process.execPath, [join(import.meta.dirname, '..', 'fixtures', fixture)], {
    cwd: join(import.meta.dirname, '..', '..'),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  t.teardown(() => { child.kill('SIGKILL') })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`${fixture} printed no port within ${timeoutMs} ms:\n${output}`)) }, timeoutMs)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${fixture} exited (${code ?? signal}) before it listened:\n${output}`))
    })
    child.stdout.once('data', (chunk: Buffer) => {
      clearTimeout(timer)
      resolve(Number(chunk.toString().trim()))
    })
  })
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  return { port, output: () => output, alive: () => child.exitCode === null && child.signalCode === null }
}
