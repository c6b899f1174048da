// The demo app (demo/app.js, what `npm start` serves): its tour driven through inject(), and
// `npm start` as a real process that a process manager stops with a signal.
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
// @ts-expect-error the demo is plain JavaScript, written as an application would be
import { buildDemo } from '../demo/app.js'
import { Fernet, MultiFernet } from '../index.js'
import { serversMissing, startRedis } from './helpers/servers.js'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'

// `npm start` builds before it serves, which takes a while on a slow machine.
t.setTimeout(300_000)

const KEY = Fernet.generateKey()
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

/** The browser's side of the session: cookies as the responses set and cleared them. */
type Jar = Record<string, string>

function absorb (jar: Jar, response: LightMyRequestResponse): LightMyRequestResponse {
  for (const cookie of response.cookies as Array<{ name: string, value: string, maxAge?: number, expires?: Date }>) {
    const cleared = cookie.value === '' || cookie.maxAge === 0 || (cookie.expires !== undefined && cookie.expires.getTime() <= Date.now())
    if (cleared) delete jar[cookie.name]
    else jar[cookie.name] = cookie.value
  }
  return response
}

/** The session token the jar holds: the plain cookie, or the chunks joined in order. */
function tokenOf (jar: Jar): string {
  if (jar.session !== undefined) return jar.session
  let token = ''
  for (let index = 0; jar[`session.${index}`] !== undefined; index++) token += jar[`session.${index}`]
  return token
}

function sessionCookieNames (jar: Jar): string[] {
  return Object.keys(jar).filter((name) => /^session(\.\d+)?$/.test(name)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
}

const unescapeHtml = (text: string): string => text.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)))

/** The text inside the element with this id (the demo writes no markup inside these). */
function textOf (body: string, id: string): string | undefined {
  return new RegExp(`id="${id}"[^>]*>([^<]*)<`).exec(body)?.[1]
}

function flashesOf (body: string): string[] {
  const list = /<ul id="flashes"[^>]*>(.*?)<\/ul>/s.exec(body)?.[1] ?? ''
  return [...list.matchAll(/<li[^>]*>([^<]*)<\/li>/g)].map((match) => unescapeHtml(match[1] as string))
}

async function plaintextOf (jar: Jar): Promise<unknown> {
  return JSON.parse(new TextDecoder().decode(await new Fernet(KEY).decrypt(tokenOf(jar))))
}

function client (app: FastifyInstance, jar: Jar = {}) {
  return {
    jar,
    get: async (url: string) => absorb(jar, await app.inject({ url, cookies: { ...jar } })),
    post: async (url: string, payload?: string) => absorb(jar, await app.inject({ method: 'POST', url, cookies: { ...jar }, ...(payload === undefined ? {} : { payload, headers: FORM }) }))
  }
}

t.test('the tour: counter, flash messages, log in, a page behind requireLogin, log out', async (t) => {
  const app = await buildDemo({ key: KEY }) as FastifyInstance
  const browser = client(app)

  const first = await browser.get('/')
  t.equal(first.statusCode, 200, 'the home page opens')
  t.match(first.body, /visited this page <strong id="visits">1<\/strong> time\./, 'the first visit')
  t.same(flashesOf(first.body), [], 'no messages yet')
  t.match(first.body, /<form method="post" action="\/login">/, 'a log-in form')
  t.match((await browser.get('/')).body, /<strong id="visits">2<\/strong> times/, 'the counter increments')

  const guarded = await browser.get('/account')
  t.equal(guarded.statusCode, 303, 'onLoginRequired redirects instead of the 401')
  t.equal(guarded.headers.location, '/', 'to the home page')
  const redirected = await browser.get('/')
  t.same(flashesOf(redirected.body), ['Log in to see your account.'], 'and the home page says why')
  t.match(redirected.body, /<strong id="visits">3<\/strong>/, 'the account page did not count as a visit')
  t.same(flashesOf((await browser.get('/')).body), [], 'a flash message is shown once')

  const hostile = '<script>alert(1)</script>'
  const login = await browser.post('/login', `name=${encodeURIComponent(` ${hostile} `)}`)
  t.equal(login.statusCode, 303, 'a form post answers See Other')
  t.equal(login.headers.location, '/', 'to the home page')
  t.same(await plaintextOf(browser.jar), { visits: 4, current_user: { name: hostile }, _flashes: [['info', `Welcome, ${hostile}: you are logged in.`]] },
    'login() stored the user where the README says, kept the counter (keepOnLogin) and a flash message')
  const home = await browser.get('/')
  t.match(home.body, /<p id="user">Logged in as <strong>&#60;script&#62;alert\(1\)&#60;\/script&#62;<\/strong><\/p>/, 'the name, escaped')
  t.same(flashesOf(home.body), [`Welcome, ${hostile}: you are logged in.`], 'the welcome, escaped in the page and whole once read')
  t.notMatch(home.body, '<script>', 'nothing the visitor typed becomes markup')
  t.match(home.body, /<strong id="visits">5<\/strong>/, 'the counter goes on')
  t.same(flashesOf((await browser.get('/')).body), [], 'the welcome is shown once')

  const account = await browser.get('/account')
  t.equal(account.statusCode, 200, 'logged in, the page behind requireLogin opens')
  t.match(account.body, /<p id="account">You are logged in as <strong>&#60;script&#62;alert\(1\)&#60;\/script&#62;<\/strong>/, 'the account page shows the user, escaped')
  t.same(JSON.parse(unescapeHtml(textOf(account.body, 'account-user') as string)), { name: hostile }, 'it shows session.user')
  t.notMatch(account.body, '<script>')
  t.same((await browser.get('/api/session')).json(), { visits: 6, user: { name: hostile } }, '/api/session has the user from session.user')

  const logout = await browser.post('/logout')
  t.equal(logout.statusCode, 303, 'logging out answers See Other')
  t.equal(logout.headers.location, '/', 'to the home page')
  t.same(await plaintextOf(browser.jar), { _flashes: [['info', 'You are logged out, and the session was emptied.']] }, 'logout() emptied the session; only the message is left')
  t.same((await browser.get('/api/session')).json(), { visits: 0, user: null }, 'the API does not take the message')
  const after = await browser.get('/')
  t.same(flashesOf(after.body), ['You are logged out, and the session was emptied.'], 'the home page says so')
  t.match(after.body, /visited this page <strong id="visits">1<\/strong> time\./, 'the counter starts again')
  t.equal(textOf(after.body, 'user'), undefined, 'nobody is logged in')
  t.equal((await browser.get('/account')).statusCode, 303, 'and the account page is closed again')

  t.equal((await browser.post('/login', 'name=++')).statusCode, 400, 'a blank name is refused')
  const tampered = await app.inject({ url: '/api/session', cookies: { session: tokenOf(browser.jar).slice(0, -6) + 'AAAA==' } })
  t.same(tampered.json(), { visits: 0, user: null }, 'an edited cookie: a fresh session')
})

t.test('the cookie page shows the cookie the request brought', async (t) => {
  const app = await buildDemo({ key: KEY }) as FastifyInstance
  const browser = client(app)
  const fernet = new MultiFernet([KEY])

  const none = await browser.get('/cookie')
  t.equal(none.statusCode, 200, 'the cookie page opens without a cookie')
  t.match(none.body, /id="cookie-none"/, 'no cookie yet, and the page says so')
  t.same(browser.jar, {}, 'looking does not start a session')

  /** Checks the page against the jar's cookies, which are what the request sent. */
  async function check (t: Test, expectedChunks: (count: number) => boolean): Promise<void> {
    const sent = { ...browser.jar }
    const before = Math.floor(Date.now() / 1000)
    const page = await browser.get('/cookie')
    const after = Math.floor(Date.now() / 1000)
    const token = tokenOf(sent)
    const names = sessionCookieNames(sent)
    t.ok(expectedChunks(names.length), `the session takes ${names.length} cookie(s): ${names.join(', ')}`)
    t.equal(textOf(page.body, 'cookie-count'), String(names.length), 'the page counts them')
    t.equal(textOf(page.body, 'cookie-size'), String(Buffer.byteLength(token)), `its size: ${token.length} bytes`)
    const expires = await fernet.extractTimestamp(token) + 86_400
    t.equal(textOf(page.body, 'cookie-expires'), new Date(expires * 1000).toISOString(), 'expiry: the token\'s timestamp + ttl')
    const expiresIn = Number(textOf(page.body, 'cookie-expires-in'))
    t.ok(expiresIn >= expires - after && expiresIn <= expires - before, `seconds from now: ${expiresIn}`)
    t.same(JSON.parse(unescapeHtml(textOf(page.body, 'session-json') as string)), await plaintextOf(sent), 'the JSON is what the cookie holds')
  }

  const home = await browser.get('/')
  t.equal(home.cookies.find((cookie) => cookie.name === 'session')?.maxAge, 86_400, 'the browser keeps the cookie as long as the server accepts it')
  await t.test('one plain cookie', async (t) => { await check(t, (count) => count === 1 && browser.jar.session !== undefined) })

  // The hostile name and the pending welcome are in the cookie: the page shows the JSON escaped.
  await browser.post('/login', 'name=%3Cscript%3Ex%3C%2Fscript%3E')
  const sent = { ...browser.jar }
  const withFlash = await browser.get('/cookie')
  t.same(flashesOf(withFlash.body), ['Welcome, <script>x</script>: you are logged in.'], 'the cookie page shows flash messages too')
  t.notMatch(withFlash.body, '<script>', 'escaped')
  t.same(JSON.parse(unescapeHtml(textOf(withFlash.body, 'session-json') as string)), await plaintextOf(sent), 'the JSON from before the page took the message')

  let pads = 0
  while (sessionCookieNames(browser.jar).length === 1 && pads < 20) {
    t.equal((await browser.post('/cookie/pad')).headers.location, '/cookie', 'padding returns to the cookie page')
    pads++
  }
  await t.test(`after ${pads} KB of padding: chunks`, async (t) => { await check(t, (count) => count > 1 && browser.jar.session === undefined) })

  const padding = async (): Promise<number> => ((await plaintextOf(browser.jar)) as { padding: string }).padding.length
  while (await padding() < 8192 && pads < 20) {
    await browser.post('/cookie/pad')
    pads++
  }
  await browser.post('/cookie/pad')
  t.equal(await padding(), 8192, 'the padding has a limit')
  t.same(flashesOf((await browser.get('/cookie')).body), ['The padding stops at 8192 bytes, within the demo\'s maxSessionSize of 12800.'], 'and a message says so')
  await t.test('at the padding limit', async (t) => { await check(t, (count) => count > 1) })

  await browser.post('/cookie/unpad')
  t.same(sessionCookieNames(browser.jar), ['session'], 'without the padding, one plain cookie again, the chunks cleared')
  await t.test('small again', async (t) => { await check(t, (count) => count === 1) })

  const refused = await app.inject({ url: '/cookie', cookies: { session: tokenOf(browser.jar).slice(0, -6) + 'AAAA==' } })
  t.match(refused.body, /id="cookie-refused"/, 'an edited cookie: the page says it could not be opened')
  t.notMatch(refused.body, /id="cookie-size"/, 'and shows no figures for it')
})

t.test('with REDIS_URL the demo keeps sessions in Redis: the cookie holds only an id', { skip: serversMissing('redis') }, async (t) => {
  const redis = await startRedis(t)
  const app = await buildDemo({ key: KEY, redisUrl: redis.url, warn: () => {} })
  t.teardown(async () => { await app.close() })
  const browser = client(app)
  const home = await browser.get('/')
  t.match(home.body, /The session lives in Redis/, 'the page says where the session lives')
  await browser.post('/login', 'name=Ada')
  const cookieText = new TextDecoder().decode(await new Fernet(KEY).decrypt(tokenOf(browser.jar)))
  t.match(cookieText, /^[A-Za-z0-9_-]{22}$/, 'the cookie is a token of a 22-character id, not of the data')
  t.match((await browser.get('/account')).body, /logged in as <strong>Ada<\/strong>/)
  const copy = { ...browser.jar }
  await browser.post('/logout')
  t.notMatch((await client(app, copy).get('/account')).body, /logged in as/, 'a copy of the cookie taken before logout opens nothing')
})

t.test('without a key: generates one and warns once', async (t) => {
  const warnings: string[] = []
  const saved = process.env.SESSION_KEY
  delete process.env.SESSION_KEY
  t.teardown(() => { if (saved !== undefined) process.env.SESSION_KEY = saved })
  const app = await buildDemo({ warn: (message: string) => warnings.push(message) }) as FastifyInstance
  t.equal(warnings.length, 1)
  t.match(warnings[0], /sessions will not survive a restart/)
  t.equal((await app.inject('/')).statusCode, 200)
  await buildDemo({ key: KEY, warn: (message: string) => warnings.push(message) })
  t.equal(warnings.length, 1, 'no warning with a key')
})

// Real processes. They run in a copy of the project: `npm start` builds first, and its
// `rm -rf dist` must not pull dist/ from under test files running alongside this one.
const ROOT = join(import.meta.dirname, '..')
const BUILD_INPUTS = ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'tsconfig.cjs.json', 'index.ts', 'lib', 'scripts', 'demo']

/** Node and npm as a process manager would start them: without tap's loader and settings. */
function childEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', HOST: '127.0.0.1', SESSION_KEY: KEY, LOG_LEVEL: 'warn' }
  for (const name of Object.keys(env)) {
    if (name === 'NODE_OPTIONS' || name.startsWith('TAP') || name.startsWith('_TAPJS')) delete env[name]
  }
  return env
}

/** Resolves to the port once the server prints its address; rejects if the process ends first. */
function listening (child: ChildProcess, output: { text: string }, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`no address within ${timeoutMs} ms:\n${output.text}`)) }, timeoutMs)
    const look = (): void => {
      const match = /Demo: open http:\/\/localhost:(\d+)\//.exec(output.text)
      if (match !== null) {
        clearTimeout(timer)
        resolve(Number(match[1]))
      }
    }
    child.stdout?.on('data', (chunk: Buffer) => { output.text += chunk.toString(); look() })
    child.stderr?.on('data', (chunk: Buffer) => { output.text += chunk.toString() })
    child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`exited (${code ?? signal}) before listening:\n${output.text}`)) })
  })
}

/** Linux: the processes started by `pid` and by those, from /proc, to find what npm started. */
function descendantsOf (pid: number): number[] {
  const parents = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {
      // The process ended while we looked.
    }
  }
  const found: number[] = []
  for (let queue = [pid]; queue.length > 0;) {
    const parent = queue.shift()
    for (const [child, ppid] of parents) {
      if (ppid === parent) { found.push(child); queue.push(child) }
    }
  }
  return found
}

function argvOf (pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((arg) => arg !== '')
  } catch {
    return []
  }
}

/** node running the demo server, not a shell whose command line mentions it. */
function isServer (pid: number): boolean {
  const argv = argvOf(pid)
  return argv.length === 2 && /(^|\/)node$/.test(argv[0] as string) && argv[1] === 'demo/server.js'
}

/** Gone, or a zombie nobody has reaped yet (it no longer runs). */
function ended (pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch {
    return true
  }
}

/** Whether anything accepts a TCP connection on the port. */
function answers (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { resolve(false) })
  })
}

/** Polls until the condition holds or the time is up; says which. No speed is judged, only that it happens. */
async function eventually (condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await condition()) return true
    await sleep(100)
  }
  return await condition()
}

/** The promise's value, or 'still waiting' once the time is up: a hang fails one check, not the whole file. */
async function within<T> (promise: Promise<T>, timeoutMs: number): Promise<T | 'still waiting'> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'still waiting'>((resolve) => { timer = setTimeout(() => { resolve('still waiting') }, timeoutMs) })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

function exitOf (child: ChildProcess): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  return new Promise((resolve) => child.once('exit', (code, signal) => { resolve({ code, signal }) }))
}

t.test('the server as a real process', async (t) => {
  const copy = mkdtempSync(join(tmpdir(), 'fastify-encrypted-session-demo-'))
  const started: number[] = []
  t.teardown(() => {
    // Whatever a failed check left running, by the ids this test started or found.
    for (const pid of started.flatMap((pid) => [...descendantsOf(pid), pid])) {
      try { process.kill(pid, 'SIGKILL') } catch {}
    }
    rmSync(copy, { recursive: true, force: true })
  })
  for (const name of BUILD_INPUTS) cpSync(join(ROOT, name), join(copy, name), { recursive: true })
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir')

  await t.test('npm start: a SIGTERM to the npm process stops the server', async (t) => {
    const output = { text: '' }
    const npm = spawn('npm', ['start'], { cwd: copy, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    started.push(npm.pid as number)
    const port = await listening(npm, output, 180_000)
    // Looked up while npm still runs: once it ends, an orphan would belong to another parent.
    const below = descendantsOf(npm.pid as number)
    const server = below.find(isServer)
    t.ok(server, `the server runs under npm: ${below.map((pid) => argvOf(pid).join(' ')).join('; ')}`)
    if (server === undefined) return
    started.push(server)

    const response = await fetch(`http://127.0.0.1:${port}/`)
    t.equal(response.status, 200, 'GET / over a real socket')
    t.match(await response.text(), /<strong id="visits">1<\/strong>/, 'the demo answers over a real socket')

    npm.kill('SIGTERM')
    t.ok(await eventually(() => ended(server), 30_000), 'the server process exits')
    t.ok(await eventually(async () => !await answers(port), 30_000), 'and the port stops answering')
    t.same(await within(exitOf(npm), 30_000), { code: 0, signal: null }, 'npm reports the server\'s clean exit')
  })

  await t.test('SIGINT to the server itself: it closes and exits 0', async (t) => {
    const output = { text: '' }
    const server = spawn(process.execPath, ['demo/server.js'], { cwd: copy, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    started.push(server.pid as number)
    const port = await listening(server, output, 60_000)
    t.equal((await fetch(`http://127.0.0.1:${port}/api/session`)).status, 200, 'the server answers')
    server.kill('SIGINT')
    t.same(await within(exitOf(server), 30_000), { code: 0, signal: null }, 'exit code 0, not killed by the signal')
    t.equal(await answers(port), false, 'the port is closed')
  })
})
