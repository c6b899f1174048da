// The behaviour every mode must show, the same for the session in the cookie and in any store:
// an app switches mode by configuration alone. Run by test/behaviours.test.ts (cookie, memory)
// and by the Redis and PostgreSQL tests against real servers.
import type { Test } from 'tap'
import FakeTimers from '@sinonjs/fake-timers'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import encryptedSession, { type EncryptedSessionOptions, Fernet } from '../../index.js'
import { isCleared, setCookie } from './app.js'

/** Cookies a browser would hold: every Set-Cookie applied, cleared ones dropped. */
export class Jar {
  readonly cookies: Record<string, string> = {}

  take (response: LightMyRequestResponse): LightMyRequestResponse {
    for (const cookie of response.cookies as Array<{ name: string, value: string, maxAge?: number, expires?: Date }>) {
      if (isCleared(cookie)) delete this.cookies[cookie.name]
      else this.cookies[cookie.name] = cookie.value
    }
    return response
  }
}

function routes (app: FastifyInstance): void {
  app.get('/count', async (request) => {
    const visits = (request.session.get('visits') ?? 0) + 1
    request.session.set('visits', visits)
    return { visits }
  })
  app.get('/read', async (request) => ({ isNew: request.session.isNew, data: request.session.data() }))
  app.get('/set/:key/:value', async (request) => {
    const { key, value } = request.params as { key: string, value: string }
    request.session.set(key, value)
    return {}
  })
  app.get('/nested', async (request) => {
    const cart = request.session.get('cart') as string[] | undefined
    if (cart === undefined) request.session.set('cart', ['a'])
    else cart.push(String(cart.length))
    return {}
  })
  app.get('/property', async (request) => {
    (request.session as unknown as Record<string, unknown>).viaProperty = 'yes'
    return {}
  })
  app.get('/login/:name', async (request) => {
    request.session.login({ id: (request.params as { name: string }).name })
    return {}
  })
  app.get('/me', { preHandler: app.requireLogin }, async (request) => ({ user: request.session.user }))
  app.get('/logout', async (request) => { request.session.logout(); return {} })
  app.get('/destroy', async (request) => { request.session.destroy(); return {} })
  app.get('/flash', async (request) => { request.session.flash('info', 'saved'); return {} })
  app.get('/flashes', async (request) => request.session.flashes())
  app.get('/regenerate', async (request) => { await request.session.regenerate(['keep']); return request.session.data() })
  app.get('/remember', async (request) => { request.session.options({ maxAge: 7 * 86_400 }); return {} })
}

/** The behavioural suite, for an app built with these extra options (say, a store). */
export async function sessionBehaviours (t: Test, extra: Partial<EncryptedSessionOptions> = {}): Promise<void> {
  const key = Fernet.generateKey()
  const build = async (options: Partial<EncryptedSessionOptions> = {}): Promise<FastifyInstance> => {
    const app = Fastify()
    await app.register(encryptedSession, { key, keepOnLogin: ['cart'], maxTtl: 30 * 86_400, ...extra, ...options })
    routes(app)
    await app.ready()
    t.teardown(async () => { await app.close() })
    return app
  }
  const app = await build()
  const send = async (jar: Jar, url: string): Promise<LightMyRequestResponse> => jar.take(await app.inject({ url, cookies: jar.cookies }))

  await t.test('a counter: a cookie only when something changed', async (t) => {
    const jar = new Jar()
    t.same((await send(jar, '/count')).json(), { visits: 1 })
    t.same((await send(jar, '/count')).json(), { visits: 2 })
    const read = await send(jar, '/read')
    t.same(read.json(), { isNew: false, data: { visits: 2 } })
    t.equal(read.headers['set-cookie'], undefined, 'reading sets no cookie')
    t.equal((await app.inject('/read')).headers['set-cookie'], undefined, 'nor does a visit without a session')
  })

  await t.test('changes in place and through properties are saved', async (t) => {
    const jar = new Jar()
    await send(jar, '/nested')
    await send(jar, '/nested')
    await send(jar, '/property')
    t.same((await send(jar, '/read')).json().data, { cart: ['a', '1'], viaProperty: 'yes' })
  })

  await t.test('login: a user, a new token, only the kept keys; requireLogin; logout', async (t) => {
    const jar = new Jar()
    t.equal((await send(jar, '/me')).statusCode, 401)
    await send(jar, '/set/secret/anonymous')
    await send(jar, '/nested')
    const before = jar.cookies.session
    await send(jar, '/login/ada')
    t.not(jar.cookies.session, before, 'login issues a new token')
    t.same((await send(jar, '/me')).json(), { user: { id: 'ada' } })
    t.same((await send(jar, '/read')).json().data, { cart: ['a'], current_user: { id: 'ada' } }, 'only keepOnLogin keys survive')
    const loggedOut = await send(jar, '/logout')
    t.ok(isCleared(setCookie(loggedOut)), 'logout clears the cookie')
    t.equal((await send(jar, '/me')).statusCode, 401)
  })

  await t.test('flash messages, read once', async (t) => {
    const jar = new Jar()
    await send(jar, '/flash')
    t.same((await send(jar, '/flashes')).json(), [{ category: 'info', message: 'saved' }])
    t.same((await send(jar, '/flashes')).json(), [])
  })

  await t.test('regenerate keeps the named keys under a new token', async (t) => {
    const jar = new Jar()
    await send(jar, '/set/keep/1')
    await send(jar, '/set/drop/2')
    const before = jar.cookies.session
    t.same((await send(jar, '/regenerate')).json(), { keep: '1' })
    t.not(jar.cookies.session, before)
    t.same((await send(jar, '/read')).json().data, { keep: '1' })
  })

  await t.test('destroy clears, a bad cookie gives a fresh session and is cleared', async (t) => {
    const jar = new Jar()
    await send(jar, '/count')
    t.ok(isCleared(setCookie(await send(jar, '/destroy'))))
    const bad = await app.inject({ url: '/read', cookies: { session: `${Fernet.generateKey()}x` } })
    t.same(bad.json(), { isNew: true, data: {} })
    t.ok(isCleared(setCookie(bad)))
    const forged = await new Fernet(Fernet.generateKey()).encrypt('{"visits":99}')
    t.same((await app.inject({ url: '/read', cookies: { session: forged } })).json(), { isNew: true, data: {} }, 'another key\'s token opens nothing')
  })

  await t.test('remember me: the chosen lifetime is the cookie\'s Max-Age', async (t) => {
    const jar = new Jar()
    await send(jar, '/count')
    t.equal(setCookie(await send(jar, '/remember'))?.maxAge, 7 * 86_400)
    t.same((await send(jar, '/read')).json().data.visits, 1)
  })

  await t.test('encodeSession and decodeSession outside a request', async (t) => {
    const token = await app.encodeSession({ visits: 41 })
    t.equal((await app.decodeSession(token)).get('visits'), 41)
    t.same((await app.inject({ url: '/count', cookies: { session: token } })).json(), { visits: 42 })
  })

  await t.test('rolling renewal and expiry follow the token\'s own time', async (t) => {
    const clock = FakeTimers.install({ now: Date.now(), toFake: ['Date'] })
    t.teardown(() => clock.uninstall())
    const jar = new Jar()
    await send(jar, '/count')
    clock.tick(3600_000)
    t.equal((await send(jar, '/read')).headers['set-cookie'], undefined, 'an hour old: no renewal')
    clock.tick(6 * 3600_000)
    const renewed = await send(jar, '/read')
    t.ok(setCookie(renewed), 'past a quarter of the ttl: renewed')
    t.same(renewed.json().data, { visits: 1 }, 'with its data')
    const token = jar.cookies.session as string
    clock.tick(86_401_000)
    t.same((await app.inject({ url: '/read', cookies: { session: token } })).json(), { isNew: true, data: {} }, 'a day after its last renewal: expired')
  })
}
