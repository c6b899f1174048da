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

/** A browser of its own over real HTTP: one cookie jar for the session cookie, for servers in child processes. */
export interface HttpBrowser {
  /** The session cookie as the browser would send it ('' for none). */
  cookie: () => string
  get: (server: { port: number }, path: string, method?: string) => Promise<{ status: number, body: any }>
}

export function httpBrowser (): HttpBrowser {
  let cookie = ''
  return {
    cookie: () => cookie,
    async get (server, path, method = 'GET') {
      const response = await fetch(`http://127.0.0.1:${server.port}${path}`, { method, headers: cookie === '' ? {} : { cookie } })
      for (const line of response.headers.getSetCookie()) {
        const [pair] = line.split(';') as [string]
        cookie = /^session=;/.test(line) || /Max-Age=0/.test(line) ? '' : pair
      }
      const text = await response.text()
      return { status: response.status, body: text === '' ? undefined : JSON.parse(text) }
    }
  }
}
