// Edge cases found in review: cookie names that clash, exact renewal, data that could not be
// read back, chunk cookies out of order or in bulk, odd inputs to decodeSession.
import t, { type Test } from 'tap'
import FakeTimers from '@sinonjs/fake-timers'
import Fastify, { type FastifyInstance } from 'fastify'
import encryptedSession, { Fernet, Session } from '../index.js'
import { buildApp, isCleared, setCookie } from './helpers/app.js'

const KEY = Fernet.generateKey()
const OLD_KEY = Fernet.generateKey()
const T0 = 1_750_000_000

async function registrationError (t: Test, register: (app: FastifyInstance) => void): Promise<Error | undefined> {
  const app = Fastify()
  register(app)
  return await app.ready().then(() => undefined, (error: Error) => error)
}

const read = (app: FastifyInstance): void => {
  app.get('/read', async (request) => request.session.data())
}

t.test('cookie names that would share cookies are refused', async (t) => {
  for (const [first, second] of [['session', 'session'], ['session', 'session.0'], ['session.12', 'session'], ['a', 'a.7']]) {
    const error = await registrationError(t, (app) => {
      app.register(encryptedSession, { key: KEY, cookieName: first })
      app.register(encryptedSession, { key: KEY, sessionName: 'other', cookieName: second })
    })
    t.match(error?.message, /would share cookies with session "session"/, `${first} and ${second}`)
  }
  t.equal(await registrationError(t, (app) => {
    app.register(encryptedSession, { key: KEY })
    app.register(encryptedSession, { key: KEY, sessionName: 'admin', cookieName: 'session.admin' })
    app.register(encryptedSession, { key: KEY, sessionName: 'x', cookieName: 'sessions' })
  }), undefined, 'names that merely start alike are fine')
})

t.test('cookie attributes that leave no room are refused', async (t) => {
  const error = await registrationError(t, (app) => app.register(encryptedSession, { key: KEY, cookie: { path: `/${'p'.repeat(3500)}` } }))
  t.match(error?.message, /leave less than 1,024 of a cookie's 4,096 bytes/)
})

t.test('renewal and rotation reseal the JSON text as it came', async (t) => {
  const clock = FakeTimers.install({ now: T0 * 1000, toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
  // From Python: a 64-bit id JavaScript cannot hold exactly, a float written 1.0, spaces.
  const text = '{"user_id": 1152921504606846977, "price": 1.0, "tags": ["a"]}'
  const { app } = await buildApp({ key: [KEY, OLD_KEY], ttl: 100 }, read)
  const rotated = await app.inject({ url: '/read', cookies: { session: await new Fernet(OLD_KEY).encryptAtTime(text, T0) } })
  const reissued = setCookie(rotated)?.value as string
  t.equal(new TextDecoder().decode(await new Fernet(KEY).decrypt(reissued)), text, 'rotation: byte for byte')

  clock.tick(30_000)
  const rolled = setCookie(await app.inject({ url: '/read', cookies: { session: reissued } }))?.value as string
  t.ok(rolled, 'rolling renewal')
  t.equal(new TextDecoder().decode(await new Fernet(KEY).decrypt(rolled)), text, 'renewal: byte for byte')
  t.equal(await new Fernet(KEY).extractTimestamp(rolled), T0 + 30)

  const { app: writer } = await buildApp({ key: KEY }, (app) => {
    app.get('/write', async (request) => {
      request.session.set('tags', ['b'])
      return {}
    })
  })
  const written = setCookie(await writer.inject({ url: '/write', cookies: { session: rolled } }))?.value as string
  t.equal(new TextDecoder().decode(await new Fernet(KEY).decrypt(written)), '{"user_id":1152921504606847000,"price":1,"tags":["b"]}', 'a real change writes what JavaScript holds')
})

t.test('data that reading would refuse is refused when set', async (t) => {
  const session = new Session()
  t.throws(() => { session.set('prefs', JSON.parse('{"constructor":{"prototype":{"isAdmin":true}}}')) }, { name: 'TypeError', message: /constructor.prototype/ })
  t.throws(() => { session.set('deep', JSON.parse('{"a":{"__proto__":{"isAdmin":true}}}')) }, { name: 'TypeError', message: /"__proto__" key/ })
  t.throws(() => { session.login(JSON.parse('{"__proto__":{"isAdmin":true}}')) }, TypeError)
  t.equal(session.changed, false)
  session.set('constructor', { name: 'not a prototype' })
  t.same(session.data(), { constructor: { name: 'not a prototype' } }, 'a constructor key without prototype is plain data')

  const { app, logs } = await buildApp({ key: KEY }, (app) => {
    app.get('/sneak', async (request) => {
      request.session.set('user', 'ada')
      const prefs: Record<string, unknown> = {}
      request.session.set('prefs', prefs)
      // JSON.parse makes __proto__ an own key, which JSON.stringify then writes out.
      prefs.inner = JSON.parse('{"__proto__":{"isAdmin":true}}')
      return { ok: true }
    })
  })
  const response = await app.inject('/sneak')
  t.same(response.json(), { ok: true })
  t.equal(response.headers['set-cookie'], undefined, 'changed in place afterwards: not saved')
  t.ok(logs.some((line) => line.level === 50 && /not saved/.test(line.msg)), 'logged')
})

t.test('chunk cookies: gaps, strays, too many', async (t) => {
  const { app } = await buildApp({ key: KEY, maxSessionSize: 12_800 }, read)
  const everyCookie = ['session', 'session.0', 'session.1', 'session.2', 'session.3']
  const big = await app.encodeSession({ blob: 'x'.repeat(6000) })
  const pieces = [big.slice(0, 3000), big.slice(3000, 6000), big.slice(6000)]
  const chunked = Object.fromEntries(pieces.map((piece, i) => [`session.${i}`, piece]))
  t.same(Object.keys((await app.inject({ url: '/read', cookies: chunked })).json()), ['blob'], 'chunks of any size, joined')

  const gap = await app.inject({ url: '/read', cookies: { 'session.0': pieces[0] as string, 'session.2': pieces[2] as string } })
  t.same(gap.json(), {}, 'a missing middle chunk: a fresh session')
  t.same(gap.cookies.filter(isCleared).map((c) => c.name).sort(), everyCookie, 'the plain cookie and every chunk a session can use are cleared')

  const stray = await app.inject({ url: '/read', cookies: { 'session.1': pieces[1] as string } })
  t.same(stray.json(), {})
  t.same(stray.cookies.filter(isCleared).map((c) => c.name).sort(), everyCookie, 'chunks without session.0 are cleared')

  const flood = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`session.${i}`, 'a']))
  const flooded = await app.inject({ url: '/read', cookies: flood })
  t.equal(flooded.statusCode, 200)
  t.ok(flooded.cookies.length <= 6, `a thousand chunk cookies: only the few a session can use are read and cleared (${flooded.cookies.length})`)
})

t.test('decodeSession takes anything without throwing', async (t) => {
  const { app } = await buildApp({ key: KEY }, read)
  for (const input of [undefined, null, 42, {}]) {
    const session = await app.decodeSession(input as never)
    t.equal(session.isNew, true, `${JSON.stringify(input) ?? 'undefined'}: a new session`)
  }
})

t.test('cookie names that Object.prototype also has', async (t) => {
  for (const cookieName of ['toString', 'constructor', 'hasOwnProperty']) {
    const { app, logs } = await buildApp({ key: KEY, cookieName }, read)
    const response = await app.inject('/read')
    t.same(response.json(), {}, `${cookieName}: a fresh session`)
    t.equal(response.headers['set-cookie'], undefined, `${cookieName}: nothing to clear`)
    t.notOk(logs.some((line) => line.reason !== undefined), `${cookieName}: no cookie was seen`)
  }
})
