import t, { type Test } from 'tap'
import FakeTimers from '@sinonjs/fake-timers'
import fastifyCookie from '@fastify/cookie'
import Fastify from 'fastify'
import encryptedSession, { CREATED_KEY, Fernet, Session, deriveKey, encryptedSession as named } from '../index.js'
import { buildApp, isCleared, setCookie } from './helpers/app.js'
import { keyBytes } from '../lib/fernet/fernet.js'
import { hkdf } from '../lib/fernet/hkdf.js'

const KEY = Fernet.generateKey()
const OLD_KEY = Fernet.generateKey()
const T0 = 1_750_000_000

function fakeClock (t: Test, now = T0): ReturnType<typeof FakeTimers.install> {
  const clock = FakeTimers.install({ now: now * 1000, toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
  return clock
}

async function plaintextOf (token: string, key = KEY): Promise<unknown> {
  return JSON.parse(new TextDecoder().decode(await new Fernet(key).decrypt(token)))
}

const counter = (app: import('fastify').FastifyInstance): void => {
  app.get('/', async (request) => {
    const visits = (request.session.get('visits') ?? 0) + 1
    request.session.set('visits', visits)
    return { visits }
  })
  app.get('/read', async (request) => ({ visits: request.session.get('visits') ?? null, isNew: request.session.isNew }))
  app.get('/none', async () => ({ ok: true }))
}

t.test('exports', async (t) => {
  t.equal(typeof encryptedSession, 'function')
  t.equal(named, encryptedSession, 'named export')
  t.equal((encryptedSession as unknown as { default: unknown }).default, encryptedSession, '.default, as fastify-plugin sets it')
})

t.test('the quick start: a visit counter in a raw Fernet cookie of plain JSON', async (t) => {
  const { app } = await buildApp({ key: KEY }, counter)
  const first = await app.inject('/')
  t.same(first.json(), { visits: 1 })
  const cookie = setCookie(first)
  t.ok(cookie, 'cookie set')
  t.match(cookie?.value, /^gAAAAA[A-Za-z0-9_-]+=*$/, 'the raw Fernet token')
  const header = String(first.headers['set-cookie'])
  t.match(header, /^session=gAAAAA[A-Za-z0-9_-]+=*; /, 'not percent-encoded, so Werkzeug reads it')
  t.match(header, /; Max-Age=86400/)
  t.match(header, /; Path=\//)
  t.match(header, /; HttpOnly/)
  t.match(header, /; Secure/)
  t.match(header, /; SameSite=Lax/)
  t.same(await plaintextOf(cookie?.value as string), { visits: 1 }, 'the plaintext is the session as plain JSON, no envelope')
  t.comment(`cookie value for {"visits":1}: ${cookie?.value.length} bytes`)

  const second = await app.inject({ url: '/', cookies: { session: cookie?.value as string } })
  t.same(second.json(), { visits: 2 })
  t.same(await plaintextOf(setCookie(second)?.value as string), { visits: 2 })
})

t.test('cookie size for a typical 100-byte session', async (t) => {
  const { app } = await buildApp({ key: KEY }, (app) => {
    app.get('/login', async (request) => {
      request.session.set('user', { id: 4211, name: 'Ada Lovelace', email: 'ada@example.io', roles: ['admin'] })
      request.session.set('visits', 12345)
      return request.session.data()
    })
  })
  const response = await app.inject('/login')
  const json = JSON.stringify(response.json())
  t.equal(Buffer.byteLength(json), 100, 'the session is 100 bytes of JSON')
  const value = setCookie(response)?.value as string
  // 1 version + 8 time + 16 IV + ciphertext padded to the next 16 bytes + 32 HMAC, in base64.
  const expected = Math.ceil((57 + 16 * (Math.floor(100 / 16) + 1)) / 3) * 4
  t.equal(value.length, expected, `cookie value is ${expected} bytes`)
  const header = String(response.headers['set-cookie'])
  t.comment(`100-byte session: cookie value ${value.length} bytes, whole Set-Cookie header ${Buffer.byteLength(header)} bytes`)
})

t.test('a Set-Cookie only when something changed', async (t) => {
  fakeClock(t)
  const { app } = await buildApp({ key: KEY }, (app) => {
    counter(app)
    app.get('/same', async (request) => {
      request.session.set('visits', request.session.get('visits'))
      return { changed: request.session.changed }
    })
    app.get('/peek-object', async (request) => ({ cart: request.session.get('cart') ?? null, changed: request.session.changed }))
  })
  const token = await app.encodeSession({ visits: 5, cart: { items: ['a'] } })
  for (const url of ['/none', '/read', '/same', '/peek-object']) {
    const response = await app.inject({ url, cookies: { session: token } })
    t.equal(response.statusCode, 200)
    t.equal(response.headers['set-cookie'], undefined, `${url}: no Set-Cookie`)
  }
  t.same((await app.inject({ url: '/same', cookies: { session: token } })).json(), { changed: false }, 'setting the same value is no change')
  const fresh = await app.inject('/none')
  t.equal(fresh.headers['set-cookie'], undefined, 'a new, empty session sets no cookie')
})

t.test('a nested change of a value read or set is saved', async (t) => {
  const { app } = await buildApp({ key: KEY }, (app) => {
    app.get('/push', async (request) => {
      const cart = request.session.get('cart') as { items: string[] }
      cart.items.push('b')
      return { changed: request.session.changed }
    })
    app.get('/set-then-mutate', async (request) => {
      const prefs = { theme: 'light' }
      request.session.set('prefs', prefs)
      prefs.theme = 'dark'
      return {}
    })
  })
  const token = await app.encodeSession({ cart: { items: ['a'] } })
  const pushed = await app.inject({ url: '/push', cookies: { session: token } })
  t.same(pushed.json(), { changed: true })
  t.same(await plaintextOf(setCookie(pushed)?.value as string), { cart: { items: ['a', 'b'] } })
  const mutated = await app.inject('/set-then-mutate')
  t.same(await plaintextOf(setCookie(mutated)?.value as string), { prefs: { theme: 'dark' } })
})

t.test('the session API', async (t) => {
  const { app } = await buildApp({ key: KEY }, (app) => {
    app.get('/api', async (request) => {
      const s = request.session
      const before = { isNew: s.isNew, has: s.has('a'), data: s.data(), changed: s.changed }
      s.set('a', 1)
      s.set('b', { c: [1, 2] })
      const copy = s.data()
      copy.a = 99
      const during = { has: s.has('a'), a: s.get('a'), changed: s.changed, data: s.data() }
      s.delete('a')
      s.delete('missing')
      s.set('gone', undefined)
      return { before, during, after: s.data(), toString: s.get('toString') ?? null, proto: s.has('constructor') }
    })
    app.get('/clear', async (request) => {
      request.session.clear()
      return { changed: request.session.changed, data: request.session.data() }
    })
    app.get('/destroy', async (request) => {
      request.session.destroy()
      return { changed: request.session.changed, destroyed: request.session.destroyed }
    })
    app.get('/touch', async (request) => {
      request.session.touch()
      return { changed: request.session.changed }
    })
    app.get('/destroy-new', async (request) => {
      request.session.destroy()
      return {}
    })
  })
  const api = await app.inject('/api')
  t.same(api.json(), {
    before: { isNew: true, has: false, data: {}, changed: false },
    during: { has: true, a: 1, changed: true, data: { a: 1, b: { c: [1, 2] } } },
    after: { b: { c: [1, 2] } },
    toString: null,
    proto: false
  }, 'get/set/has/delete/data/changed/isNew; inherited names are not session keys')
  const token = setCookie(api)?.value as string
  t.same(await plaintextOf(token), { b: { c: [1, 2] } })

  const cleared = await app.inject({ url: '/clear', cookies: { session: token } })
  t.same(cleared.json(), { changed: true, data: {} })
  t.ok(isCleared(setCookie(cleared)), 'clear(): an empty session clears its cookie')

  const destroyed = await app.inject({ url: '/destroy', cookies: { session: token } })
  t.same(destroyed.json(), { changed: true, destroyed: true })
  const expired = setCookie(destroyed)
  t.ok(isCleared(expired), 'destroy() expires the cookie')
  t.equal(expired?.path, '/', 'with the same path, so the browser drops the right cookie')

  const destroyedNew = setCookie(await app.inject('/destroy-new'))
  t.ok(isCleared(destroyedNew), 'destroy() clears the cookie even when the request brought none, as a secure-session user expects of a logout')

  const touched = await app.inject({ url: '/touch', cookies: { session: token } })
  t.same(touched.json(), { changed: false })
  const reissued = setCookie(touched)?.value as string
  t.ok(reissued, 'touch() re-issues')
  t.not(reissued, token)
  t.same(await plaintextOf(reissued), { b: { c: [1, 2] } })
})

t.test('set() refuses what JSON cannot carry', async (t) => {
  t.notOk({} instanceof Session)
  t.notOk((null as unknown) instanceof Session)
  const session = new Session()
  t.ok(session instanceof Session)
  t.throws(() => { session.set('__proto__', {}) }, { name: 'TypeError', message: /"__proto__" cannot be a session key/ })
  t.throws(() => { session.set('n', 10n) }, { name: 'TypeError', message: /"n" cannot be stored as JSON: .*BigInt/ })
  t.throws(() => { session.set('f', () => 1) }, { name: 'TypeError', message: /"f" cannot be stored as JSON \(a function\)/ })
  t.throws(() => { session.set(1 as unknown as string, 1) }, { message: /keys must be strings/ })
  t.equal(session.changed, false, 'nothing stored')
  session.set('constructor', 'a plain own key')
  t.equal(session.get('constructor'), 'a plain own key')
})

t.test('a value made unserialisable after set() is logged, the reply stands', async (t) => {
  const { app, logs } = await buildApp({ key: KEY }, (app) => {
    app.get('/cycle', async (request) => {
      const node: Record<string, unknown> = {}
      request.session.set('node', node)
      node.self = node
      return { ok: true }
    })
  })
  const response = await app.inject('/cycle')
  t.equal(response.statusCode, 200)
  t.same(response.json(), { ok: true })
  t.equal(response.headers['set-cookie'], undefined)
  t.ok(logs.some((line) => line.level === 50 && /session not saved/.test(line.msg)), 'logged at error level')
})

t.test('rotation: a cookie under an old key is read and re-issued under the new one', async (t) => {
  const old = await buildApp({ key: OLD_KEY }, counter)
  const oldToken = setCookie(await old.app.inject('/'))?.value as string
  const { app } = await buildApp({ key: `${KEY}, ${OLD_KEY}` }, counter)
  const response = await app.inject({ url: '/read', cookies: { session: oldToken } })
  t.same(response.json(), { visits: 1, isNew: false }, 'read with the second key')
  const reissued = setCookie(response)?.value as string
  t.ok(reissued, 're-issued although nothing changed')
  t.same(await plaintextOf(reissued, KEY), { visits: 1 }, 'under the first key')
  const again = await app.inject({ url: '/read', cookies: { session: reissued } })
  t.equal(again.headers['set-cookie'], undefined, 'and then left alone')
  const onlyNew = await buildApp({ key: [KEY] }, counter)
  t.same((await onlyNew.app.inject({ url: '/read', cookies: { session: oldToken } })).json(), { visits: null, isNew: true }, 'a removed key: a fresh session')
})

t.test('expiry: ttl from the token timestamp, Max-Age to match, rolling renewal', async (t) => {
  const clock = fakeClock(t)
  const { app, logs } = await buildApp({ key: KEY, ttl: 1000 }, counter)
  const first = await app.inject('/')
  t.equal(setCookie(first)?.maxAge, 1000, 'Max-Age is the ttl')
  const token = setCookie(first)?.value as string
  t.equal(await new Fernet(KEY).extractTimestamp(token), T0)

  clock.tick(249_000)
  t.equal((await app.inject({ url: '/read', cookies: { session: token } })).headers['set-cookie'], undefined, 'younger than ttl/4: left alone')
  clock.tick(1000)
  const rolled = await app.inject({ url: '/read', cookies: { session: token } })
  t.same(rolled.json(), { visits: 1, isNew: false })
  const renewed = setCookie(rolled)?.value as string
  t.ok(renewed, 'ttl/4 old: renewed without a change')
  t.equal(await new Fernet(KEY).extractTimestamp(renewed), T0 + 250)

  clock.tick(750_000)
  t.same((await app.inject({ url: '/read', cookies: { session: token } })).json(), { visits: 1, isNew: false }, 'age = ttl still valid')
  clock.tick(1000)
  const expired = await app.inject({ url: '/read', cookies: { session: token } })
  t.same(expired.json(), { visits: null, isNew: true }, 'ttl + 1: a fresh session')
  t.ok(isCleared(setCookie(expired)), 'and the stale cookie is cleared')
  t.ok(logs.some((line) => line.level === 20 && line.reason === 'expired'), 'logged at debug with the reason')
  t.same((await app.inject({ url: '/read', cookies: { session: renewed } })).json(), { visits: 1, isNew: false }, 'the renewed token lives on')
})

t.test('rolling: false, or a number of seconds', async (t) => {
  const clock = fakeClock(t)
  const off = await buildApp({ key: KEY, ttl: 100, rolling: false }, counter)
  const token = setCookie(await off.app.inject('/'))?.value as string
  clock.tick(99_000)
  t.equal((await off.app.inject({ url: '/read', cookies: { session: token } })).headers['set-cookie'], undefined, 'never renewed')

  const custom = await buildApp({ key: KEY, ttl: 100, rolling: 10 }, counter)
  const token2 = setCookie(await custom.app.inject('/'))?.value as string
  clock.tick(9_000)
  t.equal((await custom.app.inject({ url: '/read', cookies: { session: token2 } })).headers['set-cookie'], undefined)
  clock.tick(1_000)
  t.ok(setCookie(await custom.app.inject({ url: '/read', cookies: { session: token2 } })), 'renewed at 10 s')
})

t.test('absolute lifetime: ends a session however active', async (t) => {
  const clock = fakeClock(t)
  const { app, logs } = await buildApp({ key: KEY, ttl: 100, absoluteLifetime: 200 }, counter)
  let token = setCookie(await app.inject('/'))?.value as string
  t.same(await plaintextOf(token), { visits: 1, [CREATED_KEY]: T0 }, `creation time under ${CREATED_KEY}`)
  for (let i = 0; i < 5; i++) {
    clock.tick(50_000)
    const response = await app.inject({ url: '/', cookies: { session: token } })
    const next = setCookie(response)
    if (i < 4) {
      t.same(response.json(), { visits: i + 2 }, `active at ${50 * (i + 1)} s (age = lifetime still passes)`)
      token = next?.value as string
      t.equal((await plaintextOf(token) as Record<string, number>)[CREATED_KEY], T0, 'creation time kept')
    } else {
      t.same(response.json(), { visits: 1 }, 'past 200 s: a fresh session')
      t.equal((await plaintextOf(next?.value as string) as Record<string, number>)[CREATED_KEY], T0 + 250, 'with a new creation time')
    }
  }
  t.ok(logs.some((line) => line.reason === 'lifetime-exceeded'))

  const pythonMade = await new Fernet(KEY).encryptAtTime(JSON.stringify({ visits: 7 }), T0 + 250)
  const adopted = await app.inject({ url: '/', cookies: { session: pythonMade } })
  t.same(await plaintextOf(setCookie(adopted)?.value as string), { visits: 8, [CREATED_KEY]: T0 + 250 }, 'a session without one gets one on its next save')
})

t.test('bad cookies: a fresh session, a 200, a debug log with the reason and never the token', async (t) => {
  const { app, logs, rawLogs } = await buildApp({ key: KEY }, counter)
  const fernet = new Fernet(KEY)
  const valid = await fernet.encrypt('{"visits":1}')
  const tampered = valid.slice(0, 30) + (valid[30] === 'A' ? 'B' : 'A') + valid.slice(31)
  const cases: Array<[string, string, string]> = [
    ['tampered', tampered, 'signature'],
    ['expired', await fernet.encryptAtTime('{"visits":1}', Math.floor(Date.now() / 1000) - 86_401), 'expired'],
    ['unknown key', await new Fernet(OLD_KEY).encrypt('{"visits":1}'), 'signature'],
    ['not a token', 'hello', 'malformed'],
    ['not JSON', await fernet.encrypt('visits=1'), 'not-json'],
    ['not UTF-8', await fernet.encrypt(new Uint8Array([0x7b, 0xff, 0x7d])), 'not-utf8'],
    ['a JSON array', await fernet.encrypt('[1,2]'), 'not-object'],
    ['JSON null', await fernet.encrypt('null'), 'not-object'],
    ['a JSON number', await fernet.encrypt('42'), 'not-object'],
    ['a JSON string', await fernet.encrypt('"visits"'), 'not-object'],
    ['__proto__', await fernet.encrypt('{"visits":1,"__proto__":{"isAdmin":true}}'), 'forbidden-key'],
    ['nested __proto__', await fernet.encrypt('{"a":{"__proto__":{"isAdmin":true}}}'), 'forbidden-key'],
    ['escaped __proto__', await fernet.encrypt('{"\\u005f_proto__":{"isAdmin":true}}'), 'forbidden-key'],
    ['constructor.prototype', await fernet.encrypt('{"constructor":{"prototype":{"isAdmin":true}}}'), 'forbidden-key'],
    ['too large', 'A'.repeat(70_000), 'too-large']
  ]
  for (const [name, token, reason] of cases) {
    logs.length = 0
    const response = await app.inject({ url: '/', cookies: { session: token } })
    t.equal(response.statusCode, 200, `${name}: 200`)
    t.same(response.json(), { visits: 1 }, `${name}: a fresh session`)
    t.same(await plaintextOf(setCookie(response)?.value as string), { visits: 1 }, `${name}: replaced by a good cookie`)
    const debug = logs.filter((line) => line.level === 20 && line.msg === 'fastify-encrypted-session: session cookie ignored')
    t.equal(debug.length, 1, `${name}: one debug line`)
    t.equal(debug[0]?.reason, reason, `${name}: reason ${reason}`)
    t.notOk(rawLogs.some((line) => line.includes(token.slice(0, 40))), `${name}: the token is not logged`)
    t.equal(({} as Record<string, unknown>).isAdmin, undefined, `${name}: no prototype pollution`)
  }
  const untouched = await app.inject({ url: '/none', cookies: { session: tampered } })
  t.ok(isCleared(setCookie(untouched)), 'a bad cookie on a route that does not use the session is cleared')
})

t.test('several sessions, each with its own name, cookie and key', async (t) => {
  const app = Fastify()
  await app.register(encryptedSession, { key: KEY })
  await app.register(encryptedSession, { key: OLD_KEY, sessionName: 'admin', ttl: 60 })
  app.get('/', async (request) => {
    const admin = (request as unknown as { admin: Session }).admin
    request.session.set('who', 'user')
    admin.set('who', 'admin')
    return { user: request.session.get('who'), admin: admin.get('who') }
  })
  app.get('/read', async (request) => ({ user: request.session.get('who') ?? null, admin: (request as unknown as { admin: Session }).admin.get('who') ?? null }))
  const first = await app.inject('/')
  const user = setCookie(first, 'session')
  const admin = setCookie(first, 'admin')
  t.same(await plaintextOf(user?.value as string, KEY), { who: 'user' })
  // A registration other than the default one encrypts under a key derived for its name.
  const adminKey = Buffer.from(await hkdf(keyBytes(OLD_KEY), 'session admin')).toString('base64url')
  t.same(await plaintextOf(admin?.value as string, adminKey), { who: 'admin' })
  await t.rejects(plaintextOf(admin?.value as string, OLD_KEY), 'not under the configured key itself')
  t.equal(admin?.maxAge, 60, 'its own ttl')
  t.same((await app.inject({ url: '/read', cookies: { session: user?.value as string, admin: admin?.value as string } })).json(), { user: 'user', admin: 'admin' })
  t.same((await app.inject({ url: '/read', cookies: { session: admin?.value as string, admin: user?.value as string } })).json(), { user: null, admin: null }, 'swapped cookies open nothing')
  t.equal(await app.decodeSession(admin?.value as string, 'admin').then((s) => s.get('who')), 'admin')
  await t.rejects(app.encodeSession({}, 'nope'), { message: /no session named "nope"/ })
  const twice = Fastify()
  twice.register(encryptedSession, { key: KEY })
  twice.register(encryptedSession, { key: KEY })
  await t.rejects(async () => { await twice.ready() }, /session/, 'the same sessionName twice is refused')
})

t.test('encodeSession and decodeSession, outside a request', async (t) => {
  const { app } = await buildApp({ key: KEY }, counter)
  const token = await app.encodeSession({ visits: 41 })
  t.same((await app.inject({ url: '/', cookies: { session: token } })).json(), { visits: 42 })
  const session = await app.decodeSession(token)
  t.equal(session.get('visits'), 41)
  t.equal(session.isNew, false)
  t.same(await plaintextOf(await app.encodeSession(session)), { visits: 41 }, 'a Session encodes as its data')
  const bad = await app.decodeSession('garbage')
  t.equal(bad.isNew, true, 'a bad token decodes to a new empty session')
  t.same(bad.data(), {})
})

t.test('keys: one, a list, a comma-separated string, bytes, or a derived passphrase', async (t) => {
  const token = await new Fernet(OLD_KEY).encrypt('{"visits":3}')
  const forms: Array<[string, Parameters<typeof buildApp>[0]]> = [
    ['array', { key: [KEY, OLD_KEY] }],
    ['comma string', { key: `${KEY},${OLD_KEY}` }],
    ['bytes in an array', { key: [Buffer.from(KEY, 'base64url'), OLD_KEY] }]
  ]
  for (const [name, options] of forms) {
    const { app } = await buildApp(options, counter)
    t.same((await app.inject({ url: '/read', cookies: { session: token } })).json(), { visits: 3, isNew: false }, `${name}: later keys decrypt`)
    const written = setCookie(await app.inject('/'))?.value as string
    t.same(await plaintextOf(written, KEY), { visits: 1 }, `${name}: the first key encrypts`)
  }
  const single = await buildApp({ key: new Uint8Array(Buffer.from(KEY, 'base64url')) }, counter)
  t.same(await plaintextOf(setCookie(await single.app.inject('/'))?.value as string, KEY), { visits: 1 }, 'one key as bytes')

  const passphrase = 'a passphrase of thirty-two bytes!'
  const derivedKey = await deriveKey(passphrase, 'sixteen+ bytes salt', { iterations: 1000 })
  const derived = await buildApp({ secret: passphrase, salt: 'sixteen+ bytes salt', iterations: 1000 }, counter)
  t.same(await plaintextOf(setCookie(await derived.app.inject('/'))?.value as string, derivedKey), { visits: 1 }, 'secret + salt through deriveKey')
  const saltBytes = new TextEncoder().encode('sixteen+ bytes salt')
  const fromBytes = await buildApp({ secret: passphrase, salt: saltBytes, iterations: 1000 }, counter)
  t.same(await plaintextOf(setCookie(await fromBytes.app.inject('/'))?.value as string, derivedKey), { visits: 1 }, 'a salt given as bytes, as deriveKey takes it, derives the same key')
})

t.test('options are checked at registration, and a key is never echoed', async (t) => {
  const secretLooking = 'THIS-IS-A-SECRET-KEY-VALUE-DO-NOT-LOG-0123'
  const bad: Array<[string, unknown, RegExp]> = [
    ['no options', undefined, /a key is required/],
    ['options of a wrong type', 'key', /options must be an object/],
    ['no key', {}, /a key is required/],
    ['bad key', { key: secretLooking }, /key 1 of 1: A Fernet key must be 32 bytes/],
    ['bad second key', { key: `${KEY},${secretLooking}` }, /key 2 of 2/],
    ['empty key list', { key: [] }, /at least one key/],
    ['key of a wrong type', { key: 42 }, /key must be a Fernet key, an array/],
    ['key and secret', { key: KEY, secret: 's' }, /either key or secret/],
    ['salt with key', { key: KEY, salt: 'x'.repeat(16) }, /salt and iterations go with secret/],
    ['secret without salt', { secret: 'p'.repeat(32) }, /secret needs a salt/],
    ['salt of a wrong type', { secret: 'p'.repeat(32), salt: 16 }, /secret needs a salt: a string or bytes/],
    ['empty secret', { secret: '', salt: 'x'.repeat(16) }, /secret must be a passphrase of at least 32 bytes/],
    ['secret under 32 bytes, as secure-session refuses it', { secret: 'p'.repeat(31), salt: 'x'.repeat(16) }, /secret must be a passphrase of at least 32 bytes/],
    ['secret not a string', { secret: 42, salt: 'x'.repeat(16) }, /secret must be a passphrase/],
    ['short salt', { secret: 'p'.repeat(32), salt: 'short' }, /salt must be at least 16 bytes/],
    ['maxTtl below ttl', { key: KEY, ttl: 100, maxTtl: 99 }, /maxTtl must be at least ttl/],
    ['maxTtl of a wrong type', { key: KEY, maxTtl: '30d' }, /maxTtl must be a whole number of seconds/],
    ['unknown option', { key: KEY, tll: 5 }, /unknown option "tll"/],
    ['ttl zero', { key: KEY, ttl: 0 }, /ttl must be a whole number of seconds/],
    ['ttl fraction', { key: KEY, ttl: 1.5 }, /ttl must be/],
    ['rolling not below ttl', { key: KEY, ttl: 10, rolling: 10 }, /rolling must be less than ttl/],
    ['rolling of a wrong type', { key: KEY, rolling: 'yes' }, /rolling \(when a number\)/],
    ['absoluteLifetime', { key: KEY, absoluteLifetime: -1 }, /absoluteLifetime must be/],
    ['sessionName', { key: KEY, sessionName: 'my-session' }, /sessionName must be a JavaScript identifier/],
    ['cookieName', { key: KEY, cookieName: 'a;b' }, /cookieName must be a valid cookie name/],
    ['cookie not an object', { key: KEY, cookie: 'secure' }, /cookie must be an object/],
    ['cookie.maxAge', { key: KEY, cookie: { maxAge: 5 } }, /cookie.maxAge is set from ttl/],
    ['cookie.signed', { key: KEY, cookie: { signed: true } }, /cookie.signed is not needed: the Fernet token is authenticated/],
    ['cookie.unknown', { key: KEY, cookie: { colour: 'red' } }, /cookie.colour is not a supported cookie option/],
    ['secure-session\'s expiry', { key: KEY, expiry: 60 }, /unknown option "expiry": the lifetime in seconds is ttl here/],
    ['secure-session\'s cookieOptions', { key: KEY, cookieOptions: {} }, /unknown option "cookieOptions": cookie attributes go in cookie here/],
    ['an Object.prototype name', { key: KEY, constructor: 1 }, /unknown option "constructor"$/],
    ['secure-session\'s array of sessions', [{ key: KEY }], /register the plugin once for each session/],
    ['SameSite=None without Secure', { key: KEY, cookie: { sameSite: 'none', secure: false } }, /cookie.sameSite "none" needs secure/],
    ['cookie.domain', { key: KEY, cookie: { domain: 5 } }, /cookie.domain must be a non-empty string/],
    ['cookie.path', { key: KEY, cookie: { path: 'app' } }, /cookie.path must be a string starting with \//],
    ['cookie.secure', { key: KEY, cookie: { secure: 'yes' } }, /cookie.secure must be true, false or 'auto'/],
    ['cookie.sameSite', { key: KEY, cookie: { sameSite: 'bogus' } }, /cookie.sameSite must be/],
    ['cookie.httpOnly', { key: KEY, cookie: { httpOnly: 1 } }, /cookie.httpOnly must be true or false/],
    ['cookie.partitioned', { key: KEY, cookie: { partitioned: 'yes' } }, /cookie.partitioned must be true or false/],
    ['cookie.priority', { key: KEY, cookie: { priority: 'urgent' } }, /cookie.priority must be 'low', 'medium' or 'high'/]
  ]
  for (const [name, options, message] of bad) {
    const app = Fastify()
    app.register(encryptedSession, options as never)
    const error = await app.ready().then(() => undefined, (e: Error) => e)
    t.type(error, TypeError, `${name}: a TypeError`)
    t.match(error?.message, message, `${name}: says what is wrong`)
    t.match(error?.message, /^fastify-encrypted-session: /, `${name}: names the plugin`)
    t.notMatch(error?.message, /DO-NOT-LOG/, `${name}: does not echo the key`)
    t.notMatch(error?.message, KEY, `${name}: does not echo a good key either`)
  }
})

t.test('cookie attributes can be set', async (t) => {
  const { app } = await buildApp({
    key: KEY,
    cookieName: '__Host-sid',
    cookie: { secure: true, sameSite: 'strict', path: '/', httpOnly: true, priority: 'high', partitioned: true }
  }, counter)
  const header = String((await app.inject('/')).headers['set-cookie'])
  t.match(header, /^__Host-sid=gAAAAA/)
  t.match(header, /; SameSite=Strict/)
  t.match(header, /; Priority=High/)
  t.match(header, /; Partitioned/)
  const dev = await buildApp({ key: KEY, cookie: { secure: false, domain: 'example.test', path: '/app', httpOnly: false } }, counter)
  const devHeader = String((await dev.app.inject('/')).headers['set-cookie'])
  t.notMatch(devHeader, /Secure/)
  t.notMatch(devHeader, /HttpOnly/)
  t.match(devHeader, /; Domain=example.test/)
  t.match(devHeader, /; Path=\/app/)
  const auto = await buildApp({ key: KEY, cookie: { secure: 'auto' } }, counter)
  t.notMatch(String((await auto.app.inject('/')).headers['set-cookie']), /Secure/, "'auto' over plain HTTP: no Secure")
})

t.test('@fastify/cookie registered by the app is used, not registered twice', async (t) => {
  const app = Fastify()
  await app.register(fastifyCookie)
  await app.register(encryptedSession, { key: KEY })
  counter(app)
  const first = await app.inject('/')
  t.same(first.json(), { visits: 1 })
  t.ok(setCookie(first))
})

t.test('@fastify/cookie registered with a later hook, or none: the header is parsed here', async (t) => {
  for (const hook of ['preHandler', false] as const) {
    const app = Fastify()
    await app.register(fastifyCookie, { hook })
    await app.register(encryptedSession, { key: KEY })
    counter(app)
    const token = await app.encodeSession({ visits: 9 })
    t.same((await app.inject({ url: '/', headers: { cookie: `other=1; session=${token}` } })).json(), { visits: 10 }, `hook: ${String(hook)}`)
    t.same((await app.inject('/')).json(), { visits: 1 }, `hook: ${String(hook)}, no cookie header`)
  }
})

t.test('a WebCrypto failure while saving is an error reply, not a hung request', async (t) => {
  const { app } = await buildApp({ key: KEY }, counter)
  const subtle = globalThis.crypto.subtle
  const original = subtle.encrypt
  subtle.encrypt = async () => { throw new Error('crypto unavailable') }
  t.teardown(() => { subtle.encrypt = original })
  const response = await app.inject('/')
  t.equal(response.statusCode, 500)
  t.equal(response.headers['set-cookie'], undefined)
})

t.test('a reply sent before the session was opened is left alone', async (t) => {
  const app = Fastify()
  app.addHook('onRequest', async (request, reply) => {
    if (request.url === '/early') await reply.send({ early: true })
  })
  await app.register(encryptedSession, { key: KEY })
  counter(app)
  const response = await app.inject({ url: '/early', cookies: { session: await new Fernet(KEY).encrypt('{"a":1}') } })
  t.same(response.json(), { early: true })
  t.equal(response.headers['set-cookie'], undefined)
})
