// Load with separate sessions: a server on 127.0.0.1 in its own process (test/helpers/
// load-server.mjs, the built package used through its name) and hundreds of concurrent clients,
// each with its own keep-alive connection and its own cookie jar, each counting up in its
// session. Every response is checked: the client's own id and nonce (never another client's),
// exactly the next count (never lost, never reset), a Set-Cookie under the expected key
// (decrypted here with Fernet), no 5xx. Phase two restarts the server mid-run with the keys
// [new, old]: nobody is logged out, and every cookie is re-issued under the new key.
// Bounded: a fixed number of requests, loopback only, and a deadline.
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Agent, request, type IncomingHttpHeaders } from 'node:http'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Fernet } from '../index.js'

const CLIENTS = Number(process.env.LOAD_CLIENTS ?? 200)
const HITS = Number(process.env.LOAD_HITS ?? 25) // per client and phase
const DEADLINE = Date.now() + 150_000
const SCRIPT = join(import.meta.dirname, 'helpers', 'load-server.mjs')
t.setTimeout(200_000)

const OLD_KEY = Fernet.generateKey()
const NEW_KEY = Fernet.generateKey()
const keyOf: Record<string, Fernet> = { 0: new Fernet(OLD_KEY), 1: new Fernet(NEW_KEY) }

interface Stopped { served: number, statuses: Record<string, number> }
interface Server { child: ChildProcess, port: number, logLines: string[], stop: () => Promise<Stopped> }

/** Starts load-server.mjs in a child process and waits until it listens. */
async function startServer (keys: string[], epoch: string, port = 0): Promise<Server> {
  // A plain Node process: none of tap's loaders or coverage hooks.
  const env: NodeJS.ProcessEnv = { ...process.env, LOAD_SESSION_KEYS: keys.join(','), LOAD_PORT: String(port), LOAD_EPOCH: epoch }
  delete env.NODE_OPTIONS
  delete env.NODE_V8_COVERAGE
  const child = spawn(process.execPath, [SCRIPT], { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
  const logLines: string[] = []
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (text: string) => logLines.push(...text.split('\n').filter((line) => line !== '')))
  child.stderr?.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(() => { if (child.exitCode === null) child.kill() })
  const listening = await new Promise<number>((resolve, reject) => {
    child.on('message', (message: { type: string, port: number }) => { if (message.type === 'listening') resolve(message.port) })
    void exited.then((code) => reject(new Error(`load server exited with ${String(code)} before listening: ${stderr}`)))
  })
  return {
    child,
    port: listening,
    logLines,
    stop: async () => {
      const stopped = new Promise<Stopped>((resolve) => {
        child.on('message', (message: { type: string } & Stopped) => { if (message.type === 'stopped') resolve(message) })
      })
      child.send('stop')
      const result = await stopped
      const code = await exited
      if (code !== 0) throw new Error(`load server exited with ${String(code)}: ${stderr}`)
      return result
    }
  }
}

interface Reply { status: number, headers: IncomingHttpHeaders, body: string }
interface View { id: string | null, nonce: string | null, count: number | null, isNew: boolean }

const target = { port: 0 }
const problems = { status: [] as string[], mixed: [] as string[], lost: [] as string[], cookie: [] as string[], peek: [] as string[] }
const figures = { responses: 0, hits: 0, peeks: 0, retries: 0, reissuedOnRead: 0, phaseTwoHits: 0 }

class Client {
  readonly id: string
  readonly nonce = randomBytes(12).toString('base64url')
  readonly agent = new Agent({ keepAlive: true, maxSockets: 1 })
  /** The cookie jar: this client's session cookie, as the server last set it. */
  cookie: string | undefined
  /** The epoch whose key made the cookie in the jar. */
  cookieEpoch: string | undefined
  count = 0

  constructor (index: number) {
    this.id = `client-${index}`
  }

  #once (method: string, path: string): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { 'x-client-id': this.id, 'x-client-nonce': this.nonce }
      if (this.cookie !== undefined) headers.cookie = `session=${this.cookie}`
      if (method === 'POST') headers['content-length'] = '0'
      const outgoing = request({ host: '127.0.0.1', port: target.port, method, path, agent: this.agent, headers, timeout: 10_000 }, (incoming) => {
        let body = ''
        incoming.setEncoding('utf8')
        incoming.on('data', (chunk: string) => { body += chunk })
        incoming.on('end', () => resolve({ status: incoming.statusCode ?? 0, headers: incoming.headers, body }))
        incoming.on('error', reject)
      })
      outgoing.on('timeout', () => outgoing.destroy(new Error('timeout')))
      outgoing.on('error', reject)
      outgoing.end()
    })
  }

  /**
   * One request, retried while the server restarts (connection refused or reset: the request
   * got no answer, so the jar is unchanged and sending it again is safe).
   */
  async send (method: string, path: string): Promise<Reply> {
    for (;;) {
      if (Date.now() > DEADLINE) throw new Error('load test deadline passed')
      try {
        const reply = await this.#once(method, path)
        figures.responses++
        return reply
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code
        if (code !== 'ECONNREFUSED' && code !== 'ECONNRESET' && code !== 'EPIPE') throw error
        figures.retries++
        await sleep(20)
      }
    }
  }

  /** The session cookie a reply sets: a value, null for a cleared cookie, undefined for none. */
  static setCookie (reply: Reply): string | null | undefined {
    for (const line of reply.headers['set-cookie'] ?? []) {
      const match = /^session=([^;]*)/.exec(line)
      if (match === null) continue
      return match[1] === '' || /;\s*Max-Age=0/i.test(line) ? null : match[1] as string
    }
    return undefined
  }

  /** Checks a reply's body; returns it, or undefined when it is unusable. */
  #view (reply: Reply, what: string): View | undefined {
    if (reply.status !== 200) {
      problems.status.push(`${this.id} ${what}: status ${reply.status} ${reply.body.slice(0, 200)}`)
      return undefined
    }
    const view = JSON.parse(reply.body) as View
    if (view.id !== this.id || view.nonce !== this.nonce) {
      problems.mixed.push(`${this.id} ${what}: got the session of ${String(view.id)} (nonce ${String(view.nonce)})`)
    }
    return view
  }

  /** Checks with Fernet that a cookie is this client's session, at `count`, under the epoch's key. */
  async #checkCookie (value: string, epoch: string, what: string): Promise<boolean> {
    const fernet = keyOf[epoch]
    if (fernet === undefined) {
      problems.cookie.push(`${this.id} ${what}: unknown epoch ${epoch}`)
      return false
    }
    try {
      const data = JSON.parse(new TextDecoder().decode(await fernet.decrypt(value))) as Record<string, unknown>
      const expected = { id: this.id, nonce: this.nonce, count: this.count }
      if (JSON.stringify(data) !== JSON.stringify(expected)) {
        problems.cookie.push(`${this.id} ${what}: cookie holds ${JSON.stringify(data)}, expected ${JSON.stringify(expected)}`)
        return false
      }
      return true
    } catch {
      problems.cookie.push(`${this.id} ${what}: the cookie is not a token under the key of epoch ${epoch}`)
      return false
    }
  }

  async hit (): Promise<void> {
    const reply = await this.send('POST', '/hit')
    figures.hits++
    const view = this.#view(reply, 'hit')
    if (view === undefined) return
    const expected = this.count + 1
    if (view.count !== expected || view.isNew !== (expected === 1)) {
      problems.lost.push(`${this.id}: count ${String(view.count)} (isNew ${String(view.isNew)}), expected ${expected}`)
    }
    this.count = view.count ?? 0
    const epoch = String(reply.headers['x-epoch'])
    const cookie = Client.setCookie(reply)
    if (typeof cookie !== 'string') {
      problems.cookie.push(`${this.id} hit: no session cookie set after a change`)
      return
    }
    if (await this.#checkCookie(cookie, epoch, 'hit')) {
      this.cookie = cookie
      this.cookieEpoch = epoch
    }
  }

  async peek (): Promise<void> {
    const reply = await this.send('GET', '/peek')
    figures.peeks++
    const view = this.#view(reply, 'peek')
    if (view === undefined) return
    if (view.count !== this.count) problems.lost.push(`${this.id} peek: count ${String(view.count)}, expected ${this.count}`)
    const epoch = String(reply.headers['x-epoch'])
    const cookie = Client.setCookie(reply)
    if (epoch === '1' && this.cookieEpoch === '0') {
      // The first read under the new server: the old-key cookie is re-issued under the new key.
      if (typeof cookie !== 'string') {
        problems.peek.push(`${this.id} peek: a cookie under the old key was not re-issued`)
      } else if (await this.#checkCookie(cookie, '1', 'peek re-issue')) {
        figures.reissuedOnRead++
        this.cookie = cookie
        this.cookieEpoch = epoch
      }
    } else if (cookie !== undefined) {
      problems.peek.push(`${this.id} peek: a Set-Cookie on a read with a current cookie`)
    }
  }
}

const clients = Array.from({ length: CLIENTS }, (_, index) => new Client(index))
t.teardown(() => { for (const client of clients) client.agent.destroy() })

function noProblems (t: Test, label: string): void {
  for (const [kind, list] of Object.entries(problems)) {
    t.same(list.slice(0, 10), [], `${label}: ${list.length} ${kind} problems`)
  }
}

function errorLines (server: Server): string[] {
  return server.logLines.filter((line) => {
    try {
      return (JSON.parse(line) as { level: number }).level >= 40
    } catch {
      return true
    }
  })
}

const served: number[] = []
let first: Server

t.test(`phase 1: ${CLIENTS} concurrent clients, ${HITS} increments each`, async (t) => {
  first = await startServer([OLD_KEY], '0')
  target.port = first.port
  const started = performance.now()
  await Promise.all(clients.map(async (client) => {
    for (let i = 0; i < HITS; i++) await client.hit()
  }))
  const seconds = (performance.now() - started) / 1000
  noProblems(t, 'phase 1')
  t.same(clients.filter((client) => client.count !== HITS).map((client) => `${client.id}: ${client.count}`), [], `every client ends at exactly ${HITS}`)
  t.equal(new Set(clients.map((client) => client.cookie)).size, CLIENTS, 'every client holds its own cookie')
  t.comment(`phase 1: ${figures.hits} increments by ${CLIENTS} clients in ${seconds.toFixed(1)} s (${Math.round(figures.hits / seconds)} requests/s)`)
})

t.test('phase 2: the server restarts mid-run with keys [new, old]', async (t) => {
  const phaseTwoTotal = CLIENTS * HITS
  let rotation: Promise<void> | undefined
  let last: Server | undefined
  let gapMs = 0
  const rotate = async (): Promise<void> => {
    const stopping = performance.now()
    const stats = await first.stop()
    served.push(stats.served)
    t.same(Object.keys(stats.statuses), ['200'], `the first server answered only 200 (${JSON.stringify(stats.statuses)})`)
    t.same(errorLines(first), [], 'the first server logged nothing at warn or error level')
    const second = await startServer([NEW_KEY, OLD_KEY], '1', target.port)
    gapMs = performance.now() - stopping
    t.equal(second.port, target.port, 'restarted on the same port')
    last = second
  }
  const started = performance.now()
  await Promise.all(clients.map(async (client, index) => {
    for (let i = 0; i < HITS; i++) {
      await client.hit()
      if (++figures.phaseTwoHits === Math.floor(phaseTwoTotal / 2)) rotation = rotate()
      // Reads between the writes, half the clients after even and half after odd ones, so that
      // some clients' first request to the new server is a read.
      if ((i + index) % 2 === 0) await client.peek()
    }
  }))
  await rotation
  const seconds = (performance.now() - started) / 1000
  t.ok(rotation !== undefined && last !== undefined, 'the rotation happened mid-run')
  noProblems(t, 'phase 2')
  t.same(clients.filter((client) => client.count !== 2 * HITS).map((client) => `${client.id}: ${client.count}`), [], `nobody was logged out: every client ends at exactly ${2 * HITS}`)
  let underNew = 0
  for (const client of clients) {
    try {
      await keyOf[1]?.decrypt(client.cookie as string)
      underNew++
    } catch {}
  }
  t.equal(underNew, CLIENTS, 'every cookie was re-issued under the new key (checked with Fernet)')
  t.ok(figures.reissuedOnRead > 0, `read-only requests re-issued old-key cookies under the new key (${figures.reissuedOnRead})`)
  const stats = await (last as Server).stop()
  served.push(stats.served)
  t.same(Object.keys(stats.statuses), ['200'], `the restarted server answered only 200 (${JSON.stringify(stats.statuses)})`)
  t.same(errorLines(last as Server), [], 'the restarted server logged nothing at warn or error level')
  const total = served.reduce((sum, n) => sum + n, 0)
  t.ok(total >= figures.responses, `the servers served every response the clients got (${total} served, ${figures.responses} received)`)
  t.comment(`phase 2: ${phaseTwoTotal} increments and ${figures.peeks} reads in ${seconds.toFixed(1)} s; restart gap ${gapMs.toFixed(0)} ms, ${figures.retries} requests retried while the server was down`)
  t.comment(`figures: ${total} requests served (${served.join(' + ')}), ${CLIENTS} clients with their own cookie jars and connections, 1 rotation, ${figures.reissuedOnRead} old-key cookies re-issued on a read; counts lost: ${problems.lost.length}, sessions mixed: ${problems.mixed.length}, non-200 answers: ${problems.status.length}`)
})
