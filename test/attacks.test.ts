// Regression tests for what an outside attacker found (issue 9), each through the plugin as an
// attacker reaches it: forged cookies, misbehaving routes on a real server, copied cookies.
import t from 'tap'
import { connect } from 'node:net'
import FakeTimers from '@sinonjs/fake-timers'
import Fastify, { type FastifyInstance } from 'fastify'
import encryptedSession, { DEFAULT_MAX_SESSION_SIZE, Fernet, MultiFernet } from '../index.js'
import { base64 } from '../lib/fernet/base64.js'
import { buildApp, isCleared, setCookie } from './helpers/app.js'
import { spyOnSubtle } from './helpers/subtle-spy.js'
import { startChildServer } from './helpers/child-server.js'

const KEY = Fernet.generateKey()
const OLD_KEY = Fernet.generateKey()
const T0 = 1_750_000_000

const echo = (app: FastifyInstance): void => {
  app.get('/data', async (request) => ({ isNew: request.session.isNew, data: request.session.data() }))
}

t.test('1. a forged cookie never reaches subtle.decrypt, so the plugin is no padding oracle', async (t) => {
  const { app } = await buildApp({ key: KEY, cacheSize: 0 }, echo)
  const victim = await app.encodeSession({ pin: '4711' })
  const bytes = base64.decode(victim)
  const macStart = bytes.length - 32
  const events = spyOnSubtle(t)
  // The attacker's moves: flip bits in the IV and in every ciphertext byte (which moves the
  // padding of the block after), and in the MAC. None of these tokens has a valid MAC.
  for (let index = 9; index < bytes.length; index += 3) {
    const forged = bytes.slice()
    forged[index] = (forged[index] as number) ^ (index < macStart ? 0x01 : 0x80)
    const response = await app.inject({ url: '/data', cookies: { session: base64.encode(forged) } })
    t.same(response.json(), { isNew: true, data: {} }, `byte ${index} changed: a fresh session`)
  }
  t.equal(events.filter((event) => event === 'decrypt:start').length, 0, 'no forged token was ever decrypted')
  t.ok(events.filter((event) => event === 'verify:start').length >= (bytes.length - 9) / 3, 'each had its MAC checked')

  events.length = 0
  const response = await app.inject({ url: '/data', cookies: { session: victim } })
  t.same(response.json(), { isNew: false, data: { pin: '4711' } })
  t.same(events, ['verify:start', 'verify:end', 'decrypt:start', 'decrypt:end'], 'the authentic cookie: MAC first, then decryption')
})

async function get (port: number, path: string, cookie?: string): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { headers: cookie === undefined ? {} : { cookie } })
  await response.arrayBuffer()
  return response.status
}

t.test('2. a route that replies twice cannot crash the server, however an attacker times it', async (t) => {
  const { port, output, alive } = await startChildServer(t, 'misbehaving-server.mjs', { KEYS: `${KEY},${OLD_KEY}` })
  const now = Math.floor(Date.now() / 1000)
  // What forces the asynchronous re-seal at will: an anonymous token older than the rolling
  // threshold, and one under a rotated key.
  const aged = await new Fernet(KEY).encryptAtTime('{"n":1}', now - 120)
  const rotated = await new Fernet(OLD_KEY).encryptAtTime('{"n":1}', now)
  const cases: Array<[string, string | undefined]> = [
    ['/twice-changed', undefined],
    ['/twice-changed', `session=${aged}`],
    ['/twice-unchanged', `session=${aged}`],
    ['/twice-unchanged', `session=${rotated}`],
    ['/hook-replies', `session=${rotated}`],
    ['/hook-replies', undefined]
  ]
  for (const [path, cookie] of cases) {
    const answers = await Promise.all(Array.from({ length: 10 }, async () => await get(port, path, cookie).catch(() => 0)))
    t.ok(answers.every((status) => status === 200 || status === 403), `${path} ${cookie === undefined ? 'without a cookie' : 'with ' + cookie.slice(0, 12)}: answered ${[...new Set(answers)].join(', ')}`)
    t.equal(await get(port, '/health'), 200, `${path}: the server still answers`)
  }
  t.ok(alive(), 'the process is still running')
  t.notMatch(output(), /Unhandled|uncaught|triggerUncaughtException/i, 'nothing unhandled was reported')
  t.match(output(), /Reply was already sent/, 'Fastify warned about the double reply, as it does without the plugin')
})

t.test('3. requireLogin: the protected handler never runs without a user, whatever onLoginRequired does', async (t) => {
  let handlerRuns = 0
  const { app } = await buildApp({ key: KEY }, (app) => {
    // An app hook that keeps onSend busy, as a slow compression or logging hook does.
    app.addHook('onSend', async () => { await new Promise((resolve) => setTimeout(resolve, 5)) })
    const routes: Record<string, ((request: unknown, reply: import('fastify').FastifyReply) => unknown) | undefined> = {
      '/sends-without-return': (_request, reply) => { void reply.redirect('/login') },
      '/async-sends-later': async (_request, reply) => {
        await new Promise((resolve) => setTimeout(resolve, 2))
        void reply.code(303).header('location', '/login').send()
      },
      '/returns-reply': async (_request, reply) => await reply.redirect('/login'),
      '/sends-nothing': () => undefined,
      '/returns-a-value': () => 'not a reply',
      '/throws': () => { throw new Error('onLoginRequired failed') },
      '/default': undefined
    }
    for (const [url, onLoginRequired] of Object.entries(routes)) {
      app.get(url, { preHandler: app.requireLogin, config: onLoginRequired === undefined ? {} : { onLoginRequired } }, async () => {
        handlerRuns++
        return { secret: 'for users only' }
      })
    }
    app.get('/login-as/:name', async (request) => {
      request.session.login({ name: (request.params as { name: string }).name })
      return {}
    })
  })
  const expected: Record<string, number> = { '/sends-without-return': 302, '/async-sends-later': 303, '/returns-reply': 302, '/sends-nothing': 401, '/returns-a-value': 401, '/throws': 500, '/default': 401 }
  for (const [url, status] of Object.entries(expected)) {
    const response = await app.inject(url)
    t.equal(response.statusCode, status, `${url}: ${status}`)
    t.notMatch(response.body, /users only/, `${url}: nothing of the handler's answer`)
  }
  await new Promise((resolve) => setTimeout(resolve, 30))
  t.equal(handlerRuns, 0, 'no protected handler ran for a visitor without a user')
  const cookie = setCookie(await app.inject('/login-as/ada'))?.value as string
  t.same((await app.inject({ url: '/sends-without-return', cookies: { session: cookie } })).json(), { secret: 'for users only' }, 'with a user it runs')
})

t.test('4. nobody: null, false, 0, "", {} and [] are no user, as in Python; login() refuses them', async (t) => {
  const { app } = await buildApp({ key: KEY }, (app) => {
    app.get('/me', { preHandler: app.requireLogin }, async (request) => ({ user: request.session.user }))
    app.get('/login', async (request) => {
      const { as } = request.query as { as: string }
      try {
        request.session.login(JSON.parse(as))
        return { ok: true }
      } catch (error) {
        return { error: (error as Error).name, message: (error as Error).message }
      }
    })
  })
  for (const nobody of [null, false, 0, '', {}, []]) {
    // As a Python app logs out: session['current_user'] = None, and the cookie still holds it.
    const token = await app.encodeSession({ current_user: nobody, cart: [1] })
    const response = await app.inject({ url: '/me', cookies: { session: token } })
    t.equal(response.statusCode, 401, `current_user ${JSON.stringify(nobody)}: nobody is logged in`)
    const refused = (await app.inject({ url: '/login', query: { as: JSON.stringify(nobody) } })).json()
    t.equal(refused.error, 'TypeError', `login(${JSON.stringify(nobody)}) is a TypeError`)
    t.match(refused.message, /reads as nobody/)
  }
  const session = await app.decodeSession(undefined)
  t.throws(() => { session.login(undefined) }, TypeError, 'login(undefined) too')
  for (const somebody of [1, -1, 'ada', { id: 0 }, [0], true]) {
    const token = await app.encodeSession({ current_user: somebody })
    t.same((await app.inject({ url: '/me', cookies: { session: token } })).json(), { user: somebody }, `${JSON.stringify(somebody)} is a user`)
  }
})

t.test('5. a cookie of one registration never opens another, though both use one key', async (t) => {
  const app = Fastify()
  await app.register(encryptedSession, { key: KEY })
  await app.register(encryptedSession, { key: KEY, sessionName: 'staff' })
  app.get('/customer', async (request) => { request.session.set('role', 'customer'); return {} })
  app.get('/whoami', async (request) => ({
    session: request.session.get('role') ?? null,
    staff: (request as unknown as { staff: typeof request.session }).staff.get('role') ?? null
  }))
  const customer = setCookie(await app.inject('/customer'))?.value as string
  const copied = await app.inject({ url: '/whoami', cookies: { session: customer, staff: customer } })
  t.same(copied.json(), { session: 'customer', staff: null }, 'the customer cookie copied into the staff cookie opens nothing there')
  t.ok(isCleared(setCookie(copied, 'staff')), 'and the copy is cleared')
  const staffToken = await app.encodeSession({ role: 'admin' }, 'staff')
  t.same((await app.inject({ url: '/whoami', cookies: { session: staffToken } })).json(), { session: null, staff: null }, 'nor the other way round')
  t.same((await app.inject({ url: '/whoami', cookies: { staff: staffToken } })).json(), { session: null, staff: 'admin' })
  t.same(JSON.parse(new TextDecoder().decode(await new Fernet(KEY).decrypt(customer))), { role: 'customer' }, 'the default registration stays plain Fernet under the key, for Python')
})

t.test('6. what set(), flash() and login() accept can be saved; what cannot is a TypeError at the call', async (t) => {
  const { app, logs } = await buildApp({ key: KEY }, (app) => {
    app.get('/try', async (request) => {
      const outcomes: string[] = []
      const attempts: Array<[string, () => void]> = [
        ['set constructor.prototype', () => { request.session.set('constructor', { prototype: { polluted: true } }) }],
        ['set nested', () => { request.session.set('a', { constructor: { prototype: {} } }) }],
        ['assign constructor', () => { Reflect.set(request.session, 'constructor', { prototype: {} }) }],
        ['flash', () => { request.session.flash('x', { constructor: { prototype: {} } }) }],
        ['login', () => { request.session.login({ constructor: { prototype: {} } }) }]
      ]
      for (const [what, attempt] of attempts) {
        try {
          attempt()
          outcomes.push(`${what}: accepted`)
        } catch (error) {
          outcomes.push(`${what}: ${(error as Error).name}`)
        }
      }
      request.session.set('kept', 'yes')
      request.session.set('constructor', 'a plain value under that key is fine')
      return outcomes
    })
  })
  const response = await app.inject('/try')
  t.same(response.json(), ['set constructor.prototype: TypeError', 'set nested: TypeError', 'assign constructor: TypeError', 'flash: TypeError', 'login: TypeError'])
  const saved = await app.decodeSession(setCookie(response)?.value as string)
  t.same(saved.data(), { kept: 'yes', constructor: 'a plain value under that key is fine' }, 'every other change of the request was saved')
  t.notOk(logs.some((line) => line.level >= 50), 'and nothing failed in onSend')
})

t.test('7. a re-issue done only for a rotated key keeps the token\'s time', async (t) => {
  const clock = FakeTimers.install({ now: T0 * 1000, toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
  const { app } = await buildApp({ key: [KEY, OLD_KEY], ttl: 1000, rolling: false }, echo)
  const old = await new Fernet(OLD_KEY).encryptAtTime('{"n":1}', T0)
  clock.tick(900_000)
  const response = await app.inject({ url: '/data', cookies: { session: old } })
  const reissued = setCookie(response)?.value as string
  t.ok(reissued, 're-issued under the current key')
  t.equal(await new MultiFernet([KEY]).extractTimestamp(reissued), T0, 'with the old token\'s timestamp, as MultiFernet.rotate does')
  t.equal(setCookie(response)?.maxAge, 1000)
  clock.tick(101_000)
  t.same((await app.inject({ url: '/data', cookies: { session: reissued } })).json(), { isNew: true, data: {} }, 'so it expires when the old one would have')
})

t.test('8. every response that writes the session clears every chunk index it does not write', async (t) => {
  const { app } = await buildApp({ key: KEY, maxSessionSize: 16_000 }, (app) => {
    app.get('/blob/:n', async (request) => {
      request.session.set('blob', 'x'.repeat(Number((request.params as { n: string }).n)))
      return {}
    })
  })
  const four = await app.inject('/blob/10000')
  const three = await app.inject('/blob/7000')
  const fourNames = four.cookies.filter((cookie) => !isCleared(cookie)).map((cookie) => cookie.name).sort()
  const threeNames = three.cookies.filter((cookie) => !isCleared(cookie)).map((cookie) => cookie.name).sort()
  t.same(fourNames, ['session.0', 'session.1', 'session.2', 'session.3'])
  t.same(threeNames, ['session.0', 'session.1', 'session.2'])
  t.same(three.cookies.filter(isCleared).map((cookie) => cookie.name).sort(), ['session', 'session.3'],
    'a concurrent response that wrote four chunks cannot leave its session.3 beside these three: it is cleared though the request never brought it')
  // The browser's jar after the two responses arrive in either order.
  for (const order of [[four, three], [three, four]]) {
    const jar: Record<string, string> = {}
    for (const response of order) {
      for (const cookie of response.cookies) {
        if (isCleared(cookie)) delete jar[cookie.name]
        else jar[cookie.name] = cookie.value
      }
    }
    const session = await app.decodeSession(jar)
    t.equal(session.isNew, false, 'whichever answer comes last, the browser holds one whole session')
  }
})

t.test('9. Vary: Cookie on every response that sets or clears the session; shared caches', async (t) => {
  const { app, logs } = await buildApp({ key: KEY, rolling: 10 }, (app) => {
    app.get('/set', async (request, reply) => {
      void reply.header('vary', 'Accept-Encoding')
      request.session.set('n', 1)
      return {}
    })
    app.get('/destroy', async (request) => { request.session.destroy(); return {} })
    app.get('/public-set', async (request, reply) => {
      void reply.header('cache-control', 'public, max-age=60, s-maxage=600')
      request.session.set('n', 2)
      return {}
    })
    app.get('/public-only', async (request, reply) => {
      void reply.header('cache-control', 'public')
      request.session.set('n', 4)
      return {}
    })
    app.get('/public-read', async (request, reply) => {
      void reply.header('cache-control', 'public, max-age=60')
      return { n: request.session.get('n') ?? null }
    })
  })
  const set = await app.inject('/set')
  t.equal(set.headers.vary, 'Accept-Encoding, Cookie', 'merged with the Vary the route set')
  t.equal((await app.inject('/destroy')).headers.vary, 'Cookie', 'a clearing Set-Cookie too')
  t.equal((await app.inject('/public-read')).headers.vary, undefined, 'no session cookie, no Vary')

  const publicSet = await app.inject('/public-set')
  t.ok(setCookie(publicSet), 'a change the app made is saved')
  t.equal(publicSet.headers['cache-control'], 'private, max-age=60', 'and the response made private, so no shared cache keeps one user\'s cookie')
  t.ok(logs.some((line) => line.level === 40 && /shared caches/.test(line.msg)), 'with a warning in the log')
  t.equal((await app.inject('/public-only')).headers['cache-control'], 'private', 'a bare public becomes private')

  const aged = await new Fernet(KEY).encryptAtTime('{"n":3}', Math.floor(Date.now() / 1000) - 60)
  const renewal = await app.inject({ url: '/public-read', cookies: { session: aged } })
  t.same(renewal.json(), { n: 3 })
  t.equal(renewal.headers['set-cookie'], undefined, 'a renewal due on a public response waits for another response')
  t.equal(renewal.headers['cache-control'], 'public, max-age=60', 'which stays as the app made it')
  t.ok(logs.some((line) => line.level === 20 && /not re-issued on a response marked for shared caches/.test(line.msg)), 'said at debug level')
})

t.test('10. a quoted cookie value opens exactly like the bare one, as Sanic writes it', async (t) => {
  const { app } = await buildApp({ key: KEY, maxSessionSize: 12_800 }, echo)
  const token = await app.encodeSession({ from: 'sanic' })
  t.ok(token.endsWith('='), 'a token that ends in =, which Sanic quotes')
  const quoted = await app.inject({ url: '/data', headers: { cookie: `session="${token}"` } })
  t.same(quoted.json(), { isNew: false, data: { from: 'sanic' } })
  t.equal(quoted.headers['set-cookie'], undefined, 'and is not cleared')
  const big = await app.encodeSession({ blob: 'y'.repeat(5000) })
  const chunks = [big.slice(0, 3000), big.slice(3000)]
  const header = chunks.map((chunk, index) => `session.${index}="${chunk}"`).join('; ')
  t.same((await app.inject({ url: '/data', headers: { cookie: header } })).json().isNew, false, 'quoted chunks join too')
  t.same((await app.inject({ url: '/data', headers: { cookie: `session="${token}` } })).json().isNew, true, 'an unbalanced quote is no token')
})

t.test('11. the default header budget works behind nginx and Apache with room for other cookies', async (t) => {
  t.equal(DEFAULT_MAX_SESSION_SIZE, 4000)
  const { app, logs } = await buildApp({ key: KEY }, (app) => {
    app.get('/blob/:n', async (request) => {
      request.session.set('blob', 'x'.repeat(Number((request.params as { n: string }).n)))
      return {}
    })
  })
  const largest = await app.inject('/blob/2900')
  t.same(largest.cookies.map((cookie) => cookie.name), ['session'], 'the largest default session is one plain cookie, no chunks')
  const setCookieHeader = String(largest.headers['set-cookie'])
  t.ok(Buffer.byteLength(setCookieHeader) < 4096, `its Set-Cookie, attributes included, fits a browser's 4,096 bytes (${Buffer.byteLength(setCookieHeader)})`)
  const value = setCookie(largest)?.value as string
  t.ok(value.length <= 4000 && value.length > 3900, `a token of ${value.length} characters`)
  const tooLarge = await app.inject('/blob/3000')
  t.equal(tooLarge.headers['set-cookie'], undefined, 'a larger session is not saved')
  t.ok(logs.some((line) => line.level === 50 && /larger than maxSessionSize/.test(line.msg)))

  // A browser's request: its usual headers, 3 KB of other cookies, and the largest session.
  const others = Array.from({ length: 12 }, (_, i) => `_ga${i}=${'v'.repeat(240)}`).join('; ')
  const cookieLine = `Cookie: ${others}; session=${value}`
  t.ok(Buffer.byteLength(cookieLine) <= 8190, `the Cookie line (${Buffer.byteLength(cookieLine)} bytes, with ${Buffer.byteLength(others)} bytes of other cookies) is within Apache's LimitRequestFieldSize 8,190 and nginx's 8 KB buffer`)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  const { port } = app.server.address() as { port: number }
  const status = await new Promise<string>((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' }, () => {
      socket.write([
        'GET /blob/1 HTTP/1.1', 'Host: 127.0.0.1', 'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36',
        'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'Accept-Language: en-GB,en;q=0.9', 'Accept-Encoding: gzip, deflate, br',
        cookieLine, 'Connection: close', '', ''
      ].join('\r\n'))
    })
    let text = ''
    socket.on('data', (chunk) => { text += chunk.toString() })
    socket.on('end', () => resolve(text.split('\r\n')[0] as string))
    socket.on('error', reject)
  })
  t.equal(status, 'HTTP/1.1 200 OK', 'Node serves it: no 431')
})
