// The session API a user of @fastify/secure-session or @fastify/session brings along (issue 10):
// property access, regenerate(), options() with "remember me", signed cookies, delete() and
// destroy(), and routes that opt out of sessions.
import t from 'tap'
import { inspect } from 'node:util'
import FakeTimers from '@sinonjs/fake-timers'
import fastifyCookie from '@fastify/cookie'
import Fastify from 'fastify'
import encryptedSession, { Fernet, Session, TTL_KEY } from '../index.js'
import { kDecide } from '../lib/session.js'
import { buildApp, isCleared, setCookie } from './helpers/app.js'

const KEY = Fernet.generateKey()
const OLD_KEY = Fernet.generateKey()
const T0 = 1_750_000_000

t.test('data keys are properties too, stored exactly like set()', async (t) => {
  const { app } = await buildApp({ key: KEY }, (app) => {
    app.get('/assign', async (request) => {
      const session = request.session as unknown as Record<string, unknown>
      session.cart = ['apple']
      session._csrf = 'secret'
      ;(session.cart as string[]).push('pear')
      return { keys: Object.keys(session), has: 'cart' in session, hasGet: 'get' in session, changed: request.session.changed }
    })
    app.get('/read', async (request) => {
      const session = request.session as unknown as Record<string, unknown>
      return { cart: session.cart ?? null, viaGet: request.session.get('cart') ?? null, spread: { ...session }, json: JSON.parse(JSON.stringify(session)) }
    })
    app.get('/remove', async (request) => {
      const session = request.session as unknown as Record<string, unknown>
      delete session.cart
      return { keys: Object.keys(session) }
    })
  })
  const assigned = await app.inject('/assign')
  t.same(assigned.json(), { keys: ['cart', '_csrf'], has: true, hasGet: true, changed: true })
  const cookie = setCookie(assigned)?.value as string
  t.ok(cookie, 'a property assignment is saved, never silently lost')
  const read = (await app.inject({ url: '/read', cookies: { session: cookie } })).json()
  t.same(read, {
    cart: ['apple', 'pear'],
    viaGet: ['apple', 'pear'],
    spread: { cart: ['apple', 'pear'], _csrf: 'secret' },
    json: { cart: ['apple', 'pear'], _csrf: 'secret' }
  }, 'read back as a property, through get(), spread and JSON.stringify')
  const removed = await app.inject({ url: '/remove', cookies: { session: cookie } })
  t.same(removed.json(), { keys: ['_csrf'] })
  t.same((await app.decodeSession(setCookie(removed)?.value as string)).data(), { _csrf: 'secret' }, 'delete session.key is saved too')
})

t.test('the API is never shadowed, and assigning to it says what to do instead', async (t) => {
  const session = new Session()
  const asRecord = session as unknown as Record<string, unknown>
  t.throws(() => { asRecord.user = { name: 'ada' } }, { name: 'TypeError', message: /"user" is part of the session's API.*session\.login\(user\) or session\.set\('user', value\)/ })
  t.throws(() => { asRecord.get = 1 }, { name: 'TypeError', message: /"get" is part of the session's API.*session\.set\('get', value\)/ })
  t.throws(() => { delete asRecord.set }, { name: 'TypeError', message: /cannot be deleted/ })
  t.throws(() => { Object.defineProperty(session, 'cart', { get: () => 1 }) }, { name: 'TypeError', message: /can only be assigned a value/ })
  t.throws(() => { Object.defineProperty(session, 'changed', { value: 1 }) }, { name: 'TypeError' })
  Object.defineProperty(session, 'viaDefine', { value: 2, enumerable: true, configurable: true, writable: true })
  t.equal(session.get('viaDefine'), 2, 'defineProperty with a value stores it')
  t.equal(typeof session.get, 'function', 'methods stay methods')
  t.same(session.data(), { viaDefine: 2 })
  session.set('get', 'a data key named like a method')
  t.equal(typeof session.get, 'function', 'a data key named "get" does not shadow get()')
  t.equal(session.get('get'), 'a data key named like a method')
  t.equal(Object.getOwnPropertyDescriptor(session, 'missing'), undefined)
  t.same(Object.getOwnPropertyDescriptor(session, 'viaDefine'), { value: 2, writable: true, enumerable: true, configurable: true })

  // Symbols are the app's or other plugins' own business: kept on the object, never saved.
  const mark = Symbol('mark')
  ;(session as unknown as Record<symbol, unknown>)[mark] = 'tag'
  t.equal((session as unknown as Record<symbol, unknown>)[mark], 'tag')
  t.ok(mark in session)
  t.same(Object.getOwnPropertyDescriptor(session, mark)?.value, 'tag')
  Object.defineProperty(session, Symbol.for('other'), { value: 1, configurable: true })
  t.ok(delete (session as unknown as Record<symbol, unknown>)[mark])
  t.notOk(mark in session)
  t.same(Object.keys(session), ['viaDefine', 'get'], 'Object.keys lists the data keys only')
  t.ok(session instanceof Session)
  t.match(inspect(session), /viaDefine: 2/, 'console.log shows the data, and no internals')
  t.notMatch(inspect(session), /settings|baseline/)
})

t.test('delete() without a key points to destroy(); destroy() always clears', async (t) => {
  const session = new Session()
  t.throws(() => { (session.delete as () => void)() }, { name: 'TypeError', message: /to end the session use session\.destroy\(\)/ })
  const { app } = await buildApp({ key: KEY }, (app) => {
    app.get('/destroy', async (request) => { request.session.destroy(); return {} })
  })
  const response = await app.inject('/destroy')
  t.ok(isCleared(setCookie(response)), 'a request that brought no cookie still gets a clearing Set-Cookie: a logout that leaves no doubt')
})

t.test('regenerate(): a fresh session keeping only the named keys, awaitable or with a callback', async (t) => {
  const { app } = await buildApp({ key: KEY }, (app) => {
    app.get('/fill', async (request) => {
      request.session.set('a', 1)
      request.session.set('b', 2)
      request.session.set('c', 3)
      return {}
    })
    app.get('/regenerate', async (request) => {
      await request.session.regenerate(['a', 'missing'])
      return request.session.data()
    })
    app.get('/regenerate-callback', async (request) => {
      const error = await new Promise((resolve) => { void request.session.regenerate(resolve) })
      request.session.set('after', true)
      return { error: error ?? null, data: request.session.data() }
    })
    app.get('/regenerate-bad', async (request) => {
      try {
        await request.session.regenerate('a' as never)
        return {}
      } catch (error) {
        return { error: (error as Error).message }
      }
    })
  })
  const filled = setCookie(await app.inject('/fill'))?.value as string
  const regenerated = await app.inject({ url: '/regenerate', cookies: { session: filled } })
  t.same(regenerated.json(), { a: 1 })
  const token = setCookie(regenerated)?.value as string
  t.not(token, filled, 'a new token')
  t.same((await app.decodeSession(token)).data(), { a: 1 })
  const withCallback = await app.inject({ url: '/regenerate-callback', cookies: { session: filled } })
  t.same(withCallback.json(), { error: null, data: { after: true } }, 'no keys named: an empty session, then what the caller sets')
  t.match((await app.inject('/regenerate-bad')).json(), { error: /takes an array of the keys to keep/ })

  // Regenerating without a change still issues a new token: the old one must not be the one in use.
  const unchanged = await app.inject({ url: '/regenerate', cookies: { session: await app.encodeSession({ a: 1 }) } })
  t.ok(setCookie(unchanged), 'a regenerated session is re-issued even when its data is the same')
})

t.test('options(): cookie attributes for this response, checked; unknown keys ignored', async (t) => {
  const { app } = await buildApp({ key: KEY }, (app) => {
    app.get('/options', async (request) => {
      const given = JSON.parse((request.query as { o: string }).o) as Record<string, unknown>
      try {
        request.session.options(given)
        request.session.set('n', 1)
        return { ok: true }
      } catch (error) {
        return { error: (error as Error).name, message: (error as Error).message }
      }
    })
  })
  const call = async (options: unknown): Promise<{ response: Awaited<ReturnType<typeof app.inject>>, body: Record<string, unknown> }> => {
    const response = await app.inject({ url: '/options', query: { o: JSON.stringify(options) } })
    return { response, body: response.json() }
  }
  const attributes = await call({ domain: 'example.test', path: '/app', sameSite: 'strict', priority: 'high', userInfo: 'from csrf', signed: true })
  t.same(attributes.body, { ok: true }, 'unknown keys, such as csrf-protection\'s userInfo, are ignored')
  const header = String(attributes.response.headers['set-cookie'])
  t.match(header, /; Domain=example\.test/)
  t.match(header, /; Path=\/app/)
  t.match(header, /; SameSite=Strict/)
  t.match(header, /; Priority=High/)
  t.match(header, /; Max-Age=86400/, 'the lifetime stays the ttl unless maxAge is given')
  const bad: Array<[unknown, RegExp]> = [
    [{ path: 'relative' }, /session\.options\(\)\.path must be a string starting with \//],
    [{ sameSite: 'none', secure: false }, /sameSite "none" needs secure/],
    [{ maxAge: 0 }, /maxAge must be a whole number of seconds, 1 or more/],
    [{ maxAge: 1.5 }, /maxAge must be a whole number/],
    [{ maxAge: 86_401 }, /longer than the registration allows \(maxTtl 86400 s\)/],
    [{ expires: 'tomorrow' }, /expires must be a valid Date/],
    [null, /takes an object of cookie options/]
  ]
  for (const [options, message] of bad) {
    const { body, response } = await call(options)
    t.match(body.message, message, `${JSON.stringify(options)}: ${String(body.message)}`)
    t.equal(response.headers['set-cookie'], undefined, 'and nothing is set')
  }
  const session = new Session()
  session.options({ sameSite: 'strict', userInfo: 'ignored' })
  t.notOk(session.changed, 'attributes alone change no data (a Session made without settings takes none of them)')
  t.throws(() => { session.options({ expires: new Date(Date.now() - 1000) }) }, { message: /expires must lie in the future/ })
  t.throws(() => { session.options({ expires: new Date(Number.NaN) }) }, { message: /valid Date/ })
})

t.test('remember me: a longer lifetime, enforced by the server too, within maxTtl', async (t) => {
  const clock = FakeTimers.install({ now: T0 * 1000, toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
  const DAY = 86_400
  const { app } = await buildApp({ key: KEY, ttl: DAY, maxTtl: 30 * DAY }, (app) => {
    app.post('/login', async (request) => {
      request.session.login({ id: 1 })
      if ((request.query as { remember?: string }).remember === '1') request.session.options({ maxAge: 30 * DAY })
      return {}
    })
    app.get('/me', async (request) => ({ user: request.session.user ?? null }))
    app.get('/forget', async (request) => { request.session.options({ maxAge: DAY }); return {} })
    app.get('/until', async (request) => {
      request.session.options({ expires: new Date(Date.now() + 7 * DAY * 1000) })
      return {}
    })
  })
  const remembered = await app.inject({ method: 'POST', url: '/login?remember=1' })
  const long = setCookie(remembered)
  t.equal(long?.maxAge, 30 * DAY, 'the cookie lives 30 days')
  t.equal((await app.decodeSession(long?.value as string)).get(TTL_KEY), 30 * DAY, 'and the session carries its lifetime')
  const short = setCookie(await app.inject({ method: 'POST', url: '/login' }))
  t.equal(short?.maxAge, DAY)

  clock.tick(2 * DAY * 1000)
  t.same((await app.inject({ url: '/me', cookies: { session: short?.value as string } })).json(), { user: null }, 'without remember me: gone after a day')
  const later = await app.inject({ url: '/me', cookies: { session: long?.value as string } })
  t.same(later.json(), { user: { id: 1 } }, 'with it: still in after two days, on the server\'s own check')
  // Rolling renewal scales with the session's lifetime (a quarter of 30 days here), and a
  // renewed cookie keeps the chosen lifetime.
  t.equal(later.headers['set-cookie'], undefined, 'two days is not yet a quarter of 30 days: no renewal')
  clock.tick(6 * DAY * 1000)
  const renewed = setCookie(await app.inject({ url: '/me', cookies: { session: long?.value as string } }))
  t.equal(renewed?.maxAge, 30 * DAY, 'renewed after a quarter of its lifetime, still for 30 days')
  clock.tick(31 * DAY * 1000)
  t.same((await app.inject({ url: '/me', cookies: { session: renewed?.value as string } })).json(), { user: null }, 'and it too ends')

  const forgotten = setCookie(await app.inject({ url: '/forget', cookies: { session: setCookie(await app.inject({ method: 'POST', url: '/login?remember=1' }))?.value as string } }))
  t.equal(forgotten?.maxAge, DAY, 'options({ maxAge: ttl }) goes back to the default')
  t.equal((await app.decodeSession(forgotten?.value as string)).has(TTL_KEY), false, 'and leaves no lifetime in the session')
  const until = setCookie(await app.inject({ url: '/until', cookies: { session: forgotten?.value as string } }))
  t.equal(until?.maxAge, 7 * DAY, 'expires: a date, turned into a lifetime')

  // A lifetime beyond what the registration allows now (maxTtl lowered) counts as the ttl.
  const strict = await buildApp({ key: KEY, ttl: DAY }, (app) => { app.get('/me', async (request) => ({ user: request.session.user ?? null })) })
  const token = await strict.app.encodeSession({ current_user: { id: 2 }, [TTL_KEY]: 30 * DAY })
  clock.tick(2 * DAY * 1000)
  t.same((await strict.app.inject({ url: '/me', cookies: { session: token } })).json(), { user: null }, 'a lifetime over maxTtl is not honoured')
})

t.test('signed cookies work as with secure-session, under secrets derived from the key', async (t) => {
  const routes = (app: import('fastify').FastifyInstance): void => {
    app.get('/sign', async (request, reply) => reply.setCookie('pref', 'dark', { signed: true, path: '/' }).send({}))
    app.get('/unsign', async (request) => request.unsignCookie(request.cookies.pref ?? ''))
  }
  const { app } = await buildApp({ key: KEY }, routes)
  const signed = setCookie(await app.inject('/sign'), 'pref')?.value as string
  t.match(signed, /^dark\./, 'signed by @fastify/cookie')
  t.same((await app.inject({ url: '/unsign', cookies: { pref: signed } })).json(), { valid: true, renew: false, value: 'dark' })
  t.same((await app.inject({ url: '/unsign', cookies: { pref: signed.replace(/.$/, (c) => c === 'A' ? 'B' : 'A') } })).json().valid, false, 'a tampered one is not valid')
  t.notOk(signed.includes(Buffer.from(KEY, 'base64url').toString('base64url').slice(0, 10)), 'the signature is no part of the key')

  const rotated = await buildApp({ key: [OLD_KEY, KEY] }, routes)
  t.same((await rotated.app.inject({ url: '/unsign', cookies: { pref: signed } })).json(), { valid: true, renew: true, value: 'dark' }, 'after a rotation the old key\'s signature still verifies, and asks to be renewed')
  const other = await buildApp({ key: OLD_KEY }, routes)
  t.equal((await other.app.inject({ url: '/unsign', cookies: { pref: signed } })).json().valid, false, 'another key\'s signature does not')

  const own = Fastify()
  await own.register(fastifyCookie, { secret: 'the app\'s own cookie secret, kept' })
  await own.register(encryptedSession, { key: KEY })
  routes(own)
  const ownSigned = setCookie(await own.inject('/sign'), 'pref')?.value as string
  t.equal(own.unsignCookie(ownSigned).valid, true)
  t.not(ownSigned, signed, 'an app that registered @fastify/cookie keeps its own secret')
})

t.test('a route with config.session false neither reads nor saves a session', async (t) => {
  const { app } = await buildApp({ key: KEY }, (app) => {
    app.get('/static', { config: { session: false } }, async (request) => ({ session: request.session }))
    app.get('/', async (request) => { request.session.set('n', 1); return {} })
  })
  const token = setCookie(await app.inject('/'))?.value as string
  const response = await app.inject({ url: '/static', cookies: { session: `${token}tampered` } })
  t.same(response.json(), { session: null }, 'request.session stays null')
  t.equal(response.headers['set-cookie'], undefined, 'even a bad cookie is left alone')
})

t.test('requireLogin keeps a send() another plugin put on the reply', async (t) => {
  const { app } = await buildApp({ key: KEY }, (app) => {
    app.addHook('preHandler', async (_request, reply) => {
      const send = reply.send
      // An own send() on the reply, as some plugins install: it must survive requireLogin.
      Object.defineProperty(reply, 'send', { value: function (this: typeof reply, payload?: unknown) { void this.header('x-wrapped', '1'); return send.call(this, payload) }, configurable: true, writable: true })
    })
    app.get('/private', { preHandler: app.requireLogin, config: { onLoginRequired: async (_request, reply) => await reply.code(403).send({ no: true }) } }, async () => ({}))
  })
  const response = await app.inject('/private')
  t.equal(response.statusCode, 403)
  t.equal(response.headers['x-wrapped'], '1', 'the plugin\'s own send() was still used, and still is')
})

t.test('attributes chosen with options() that leave the session no room: not saved, logged', async (t) => {
  const { app, logs } = await buildApp({ key: KEY }, (app) => {
    app.get('/big', async (request) => {
      request.session.set('blob', 'x'.repeat(2800))
      request.session.options({ domain: `${'sub.'.repeat(60)}example.test` })
      return {}
    })
    app.get('/small', async (request) => {
      request.session.set('blob', 'x')
      request.session.options({ domain: `${'sub.'.repeat(60)}example.test` })
      return {}
    })
  })
  const big = await app.inject('/big')
  t.equal(big.statusCode, 200, 'the reply stands')
  t.equal(big.headers['set-cookie'], undefined, 'no cookie the browser would drop')
  t.ok(logs.some((line) => line.level === 50 && /leave too little room/.test(line.msg)))
  t.match(String((await app.inject('/small')).headers['set-cookie']), /Domain=(sub\.){60}example\.test/, 'a session that fits is set with them')
})

t.test('a Session built by hand with an origin but without its text re-issues its data', async (t) => {
  const session = new Session({ data: { a: 1 }, origin: { timestamp: 100, keyIndex: 1 } })
  const decision = session[kDecide](200, { rolling: false, createdKey: undefined })
  t.match(decision, { action: 'save', json: '{"a":1}', timestamp: 100, fresh: false }, 'a rotated key alone: the same data, the old time')
})
