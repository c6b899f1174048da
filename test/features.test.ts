// Login helpers, flash messages and sessions larger than one cookie.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import encryptedSession, { FLASHES_KEY, Fernet, Session } from '../index.js'
import { buildApp, isCleared, setCookie } from './helpers/app.js'

const KEY = Fernet.generateKey()

async function plaintextOf (token: string): Promise<Record<string, unknown>> {
  return JSON.parse(new TextDecoder().decode(await new Fernet(KEY).decrypt(token))) as Record<string, unknown>
}

type Jar = Record<string, string>

/** Applies a response's Set-Cookie headers to a jar, as a browser would. */
function remember (jar: Jar, response: { cookies: Array<{ name: string, value: string, maxAge?: number, expires?: Date }> }): Jar {
  for (const cookie of response.cookies) {
    if (cookie.maxAge === 0 || (cookie.expires !== undefined && cookie.expires.getTime() <= Date.now())) delete jar[cookie.name]
    else jar[cookie.name] = cookie.value
  }
  return jar
}

function loginRoutes (app: FastifyInstance): void {
  app.post('/login', async (request) => {
    request.session.login(request.body as Record<string, unknown>)
    return { user: request.session.user }
  })
  app.post('/logout', async (request) => {
    request.session.logout()
    return { user: request.session.user ?? null }
  })
  app.get('/cart', async (request) => {
    request.session.set('cart', ['book'])
    request.session.set('theme', 'dark')
    return {}
  })
  app.get('/private', { preHandler: app.requireLogin }, async (request) => ({ hello: request.session.user }))
  app.get('/private-page', {
    preHandler: app.requireLogin,
    config: { onLoginRequired: async (_request, reply) => await reply.redirect('/login-page') }
  }, async () => ({ secret: true }))
  app.get('/session', async (request) => request.session.data())
}

t.test('login, user, logout, requireLogin', async (t) => {
  const { app } = await buildApp({ key: KEY }, loginRoutes)
  const jar: Jar = {}
  remember(jar, await app.inject('/cart'))
  const anonymous = jar.session as string

  const denied = await app.inject({ url: '/private', cookies: jar })
  t.equal(denied.statusCode, 401)
  t.same(denied.json(), { statusCode: 401, error: 'Unauthorized', message: 'Login required' })
  const redirected = await app.inject({ url: '/private-page', cookies: jar })
  t.equal(redirected.statusCode, 302, 'the route names another handler')
  t.equal(redirected.headers.location, '/login-page')

  const login = await app.inject({ method: 'POST', url: '/login', payload: { id: 7, name: 'ada' }, cookies: jar })
  t.same(login.json(), { user: { id: 7, name: 'ada' } })
  remember(jar, login)
  t.not(jar.session, anonymous, 'a fresh token')
  t.same(await plaintextOf(jar.session as string), { current_user: { id: 7, name: 'ada' } }, 'stored under current_user; no anonymous key survives by default')

  t.same((await app.inject({ url: '/private', cookies: jar })).json(), { hello: { id: 7, name: 'ada' } })
  t.same((await app.inject({ url: '/private-page', cookies: jar })).json(), { secret: true })

  const logout = await app.inject({ method: 'POST', url: '/logout', cookies: jar })
  t.same(logout.json(), { user: null })
  t.ok(isCleared(setCookie(logout)), 'logout empties the session: its cookie is cleared')
  remember(jar, logout)
  t.equal((await app.inject({ url: '/private', cookies: jar })).statusCode, 401)
})

t.test('login again with nothing changed still issues a fresh token', async (t) => {
  const { app } = await buildApp({ key: KEY }, loginRoutes)
  const first = setCookie(await app.inject({ method: 'POST', url: '/login', payload: { name: 'ada' } }))?.value as string
  const second = setCookie(await app.inject({ method: 'POST', url: '/login', payload: { name: 'ada' }, cookies: { session: first } }))?.value as string
  t.ok(second)
  t.not(second, first)
})

t.test('keepOnLogin and userKey', async (t) => {
  const { app } = await buildApp({ key: KEY, userKey: 'user', keepOnLogin: ['cart', 'missing'] }, loginRoutes)
  const jar = remember({}, await app.inject('/cart'))
  remember(jar, await app.inject({ method: 'POST', url: '/login', payload: { name: 'bob' }, cookies: jar }))
  t.same(await plaintextOf(jar.session as string), { cart: ['book'], user: { name: 'bob' } }, 'cart kept, theme dropped, user under the configured key')
  t.same((await app.inject({ url: '/private', cookies: jar })).json(), { hello: { name: 'bob' } })

  for (const [options, message] of [[{ userKey: '' }, /userKey must be a non-empty string/], [{ userKey: '__proto__' }, /userKey/], [{ keepOnLogin: 'cart' }, /keepOnLogin must be an array/], [{ keepOnLogin: [1] }, /keepOnLogin must be an array/]] as const) {
    const bad = Fastify()
    bad.register(encryptedSession, { key: KEY, ...options } as never)
    await t.rejects(async () => { await bad.ready() }, { message }, JSON.stringify(options))
  }
  t.throws(() => { new Session().login(() => 1) }, { message: /cannot be stored as JSON/ }, 'login() refuses what JSON cannot hold')
})

t.test('flash messages, stored as Flask stores them', async (t) => {
  const { app } = await buildApp({ key: KEY }, (app) => {
    app.get('/flash', async (request) => {
      request.session.flash('info', 'Saved')
      request.session.flash('error', 'Disk full')
      request.session.flash('info', 'Again')
      return {}
    })
    app.get('/flashes', async (request) => request.session.flashes())
    app.get('/flashes/:category', async (request) => request.session.flashes((request.params as { category: string }).category))
  })
  const jar = remember({}, await app.inject('/flash'))
  t.same((await plaintextOf(jar.session as string))[FLASHES_KEY], [['info', 'Saved'], ['error', 'Disk full'], ['info', 'Again']], 'under _flashes, as [category, message] pairs')

  const info = await app.inject({ url: '/flashes/info', cookies: jar })
  t.same(info.json(), [{ category: 'info', message: 'Saved' }, { category: 'info', message: 'Again' }])
  remember(jar, info)
  t.same((await plaintextOf(jar.session as string))[FLASHES_KEY], [['error', 'Disk full']], 'other categories stay')
  const rest = await app.inject({ url: '/flashes', cookies: jar })
  t.same(rest.json(), [{ category: 'error', message: 'Disk full' }])
  t.ok(isCleared(setCookie(rest)), 'read once: the now empty session clears its cookie')
  remember(jar, rest)
  t.same((await app.inject({ url: '/flashes', cookies: jar })).json(), [], 'nothing the second time')

  const foreign = await new Fernet(KEY).encrypt(JSON.stringify({ a: 1, [FLASHES_KEY]: [['ok', 'kept'], 'bare', ['too', 'many', 'parts'], [1, 'number'], ['obj', { html: '<b>' }]] }))
  t.same((await app.inject({ url: '/flashes', cookies: { session: foreign } })).json(), [{ category: 'ok', message: 'kept' }, { category: 'obj', message: { html: '<b>' } }], 'malformed entries dropped')
  const notAList = await new Fernet(KEY).encrypt(JSON.stringify({ a: 1, [FLASHES_KEY]: 'oops' }))
  const fixed = await app.inject({ url: '/flashes', cookies: { session: notAList } })
  t.same(fixed.json(), [])
  t.same(await plaintextOf(setCookie(fixed)?.value as string), { a: 1 }, 'a broken _flashes is removed')

  const session = new Session()
  t.throws(() => { session.flash(1 as unknown as string, 'x') }, { message: /category must be a string/ })
  t.throws(() => { session.flash('info', 10n) }, { message: /cannot be stored as JSON/ })
  t.same(session.flashes(), [])
  t.equal(session.changed, false, 'reading no flashes changes nothing')
})

t.test('big sessions: split across session.0, session.1, ... and joined on read', async (t) => {
  // Chunks are opt-in: the default maxSessionSize keeps a session in one cookie.
  const { app, logs } = await buildApp({ key: KEY, maxSessionSize: 12_800 }, (app) => {
    app.post('/store', async (request) => {
      request.session.set('blob', (request.body as { blob: string }).blob)
      return {}
    })
    app.get('/size', async (request) => ({ length: (request.session.get('blob') as string | undefined)?.length ?? 0 }))
  })
  const jar: Jar = {}
  const store = async (length: number): Promise<Awaited<ReturnType<typeof app.inject>>> => {
    const response = await app.inject({ method: 'POST', url: '/store', payload: { blob: 'x'.repeat(length) }, cookies: jar })
    remember(jar, response)
    return response
  }

  await store(1000)
  t.same(Object.keys(jar), ['session'], 'a session that fits stays one plain cookie')

  const big = await store(9300)
  t.ok(Buffer.byteLength(JSON.stringify({ blob: 'x'.repeat(9300) })) >= 9 * 1024, 'at least 9 KB of JSON')
  t.same(Object.keys(jar).sort(), ['session.0', 'session.1', 'session.2', 'session.3'], 'split into chunks; the plain cookie cleared')
  for (const header of big.headers['set-cookie'] as string[]) {
    t.ok(Buffer.byteLength(header) < 4096, `each Set-Cookie with its attributes under 4,096 bytes (${Buffer.byteLength(header)})`)
  }
  const cookieHeader = Object.entries(jar).map(([name, value]) => `${name}=${value}`).join('; ')
  t.ok(Buffer.byteLength(cookieHeader) < 16 * 1024 - 2048, `the Cookie header (${Buffer.byteLength(cookieHeader)} bytes) leaves room within Node's 16 KB`)
  t.same((await app.inject({ url: '/size', cookies: jar })).json(), { length: 9300 }, 'joined on read')

  await store(5000)
  t.same(Object.keys(jar).sort(), ['session.0', 'session.1'], 'shrunk: leftover chunks cleared')
  t.same((await app.inject({ url: '/size', cookies: jar })).json(), { length: 5000 })
  t.same(await app.decodeSession(jar).then((s) => (s.get('blob') as string).length), 5000, 'decodeSession joins chunks from a cookie map')

  await store(10)
  t.same(Object.keys(jar), ['session'], 'back to one plain cookie, chunks cleared')

  logs.length = 0
  await store(9300)
  const before = { ...jar }
  const tooBig = await store(20_000)
  t.equal(tooBig.statusCode, 200, 'the reply stands')
  t.equal(tooBig.headers['set-cookie'], undefined, 'past maxSessionSize: nothing set, the old cookies stay')
  t.same(jar, before)
  t.ok(logs.some((line) => line.level === 50 && /larger than maxSessionSize/.test(line.msg) && line.size !== undefined), 'a clear logged error')

  const tampered = { ...jar, 'session.1': (jar['session.1'] as string).replace(/^./, (c) => c === 'A' ? 'B' : 'A') }
  const bad = await app.inject({ url: '/size', cookies: tampered })
  t.same(bad.json(), { length: 0 }, 'a tampered chunk: a fresh session')
  const cleared = remember({ ...tampered }, bad)
  t.same(cleared, {}, 'and every chunk is cleared')
})

t.test('maxSessionSize', async (t) => {
  const { app } = await buildApp({ key: KEY, maxSessionSize: 2000 }, (app) => {
    app.get('/store/:n', async (request) => {
      request.session.set('blob', 'x'.repeat(Number((request.params as { n: string }).n)))
      return {}
    })
  })
  t.ok(setCookie(await app.inject('/store/1400')), 'under the bound: saved')
  t.equal((await app.inject('/store/1500')).headers['set-cookie'], undefined, 'over it: not saved')
  const large = await new Fernet(KEY, { maxTokenLength: 10_000 }).encrypt(JSON.stringify({ blob: 'x'.repeat(3000) }))
  const session = await app.decodeSession(large)
  t.equal(session.isNew, true, 'a longer incoming token is refused')
  const bad = Fastify()
  bad.register(encryptedSession, { key: KEY, maxSessionSize: 500 })
  await t.rejects(async () => { await bad.ready() }, { message: /maxSessionSize must be a whole number of characters, 1024 or more/ })
})
