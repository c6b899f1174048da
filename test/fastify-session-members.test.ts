// The @fastify/session members beyond what its own suite checks (fastify-session-compat.test.ts):
// browserSession, session.cookie's setters, save()/reload() in cookie mode, decryptSession's
// edges, and the on-demand promises (nothing starts until awaited).
import t, { type Test } from 'tap'
import FakeTimers from '@sinonjs/fake-timers'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import encryptedSession, { type EncryptedSessionOptions, Fernet, MemoryStore, SESSION_ID_KEY, Session } from '../index.js'
import { setCookie } from './helpers/app.js'

const KEY = Fernet.generateKey()

async function build (t: Test, options: Partial<EncryptedSessionOptions>, routes: (app: FastifyInstance) => void = () => {}): Promise<FastifyInstance> {
  const app = Fastify({ trustProxy: true })
  await app.register(encryptedSession, { key: KEY, ...options })
  routes(app)
  await app.ready()
  t.teardown(async () => { await app.close() })
  return app
}

function memoryStore (t: Test): MemoryStore {
  const store = new MemoryStore()
  t.teardown(() => { store.close() })
  return store
}

t.test('browserSession: no Max-Age, ttl still enforced, rolling still renews', async (t) => {
  const clock = FakeTimers.install({ now: Date.now(), toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
  const app = await build(t, { browserSession: true, ttl: 100, maxTtl: 1000 }, (app) => {
    app.get('/set', async (request) => { request.session.set('a', 1); return {} })
    app.get('/remember', async (request) => { request.session.options({ maxAge: 1000 }); return {} })
    app.get('/read', async (request) => ({ a: request.session.get('a') ?? null, expires: request.session.cookie.expires, maxAge: request.session.cookie.maxAge }))
  })
  const set = await app.inject('/set')
  const cookie = setCookie(set)
  t.ok(cookie?.value)
  t.equal(cookie?.maxAge, undefined, 'no Max-Age')
  t.equal(cookie?.expires, undefined, 'no Expires')
  t.same((await app.inject({ url: '/read', cookies: { session: cookie?.value as string } })).json(), { a: 1, expires: null, maxAge: null })
  clock.tick(30_000)
  const renewed = await app.inject({ url: '/read', cookies: { session: cookie?.value as string } })
  const fresh = setCookie(renewed)
  t.ok(fresh?.value, 'rolling renewal after a quarter of ttl')
  t.equal(fresh?.maxAge, undefined, 'still a browser-session cookie')
  clock.tick(80_000)
  t.same((await app.inject({ url: '/read', cookies: { session: cookie?.value as string } })).json(), { a: null, expires: null, maxAge: null }, 'the first token is past ttl: refused by the server')
  t.same((await app.inject({ url: '/read', cookies: { session: fresh?.value as string } })).json(), { a: 1, expires: null, maxAge: null }, 'the renewed one lives on')
  const remembered = await app.inject({ url: '/remember', cookies: { session: fresh?.value as string } })
  t.equal(setCookie(remembered)?.maxAge, 1000, '"remember me" makes the cookie last')
  await t.rejects(build(t, { browserSession: 'yes' as never }), /browserSession must be true or false/)
  await t.rejects(build(t, { cookie: { maxAge: 1 } as never }), /browserSession: true for a cookie that ends with the browser/)
})

t.test('session.cookie: reads and sets', async (t) => {
  const app = await build(t, { maxTtl: 86_400 * 30, cookie: { secure: 'auto', sameSite: 'strict', domain: 'example.test' } }, (app) => {
    app.get('/', async (request) => {
      const { cookie } = request.session
      const before = cookie.toJSON()
      request.session.set('a', 1)
      cookie.path = '/app'
      cookie.domain = 'sub.example.test'
      cookie.secure = true
      cookie.sameSite = 'lax'
      cookie.httpOnly = false
      cookie.partitioned = true
      cookie.priority = 'high'
      cookie.expires = null
      cookie.maxAge = null
      cookie.originalMaxAge = 7_200_000
      const after = request.session.cookie.toJSON()
      cookie.expires = new Date(Date.now() + 3_600_000)
      return { before, after, maxAge: request.session.cookie.maxAge }
    })
    app.get('/bad', async (request) => { request.session.cookie.maxAge = 'soon' as never; return {} })
  })
  const response = await app.inject('/')
  const { before, after, maxAge } = response.json()
  t.match(before, { originalMaxAge: 86_400_000, path: '/', domain: 'example.test', secure: 'auto', sameSite: 'strict', httpOnly: true })
  t.equal(before.priority, undefined)
  t.match(after, { originalMaxAge: 7_200_000, path: '/app', domain: 'sub.example.test', secure: true, sameSite: 'lax', httpOnly: false, partitioned: true, priority: 'high' })
  t.ok(maxAge > 3_590_000 && maxAge <= 3_601_000, 'expires set: an hour left')
  const header = response.headers['set-cookie'] as string
  for (const attribute of ['Max-Age=3600', 'Domain=sub.example.test', 'Path=/app', 'Priority=High', 'Secure', 'Partitioned', 'SameSite=Lax']) t.match(header, `; ${attribute}`)
  t.notMatch(header, 'HttpOnly')
  t.match((await app.inject('/bad')).json(), { statusCode: 500, message: /session.cookie.maxAge must be a number of milliseconds/ })
  const plain = new Session()
  t.match(plain.cookie.toJSON(), { path: '/', domain: null, secure: true, sameSite: null, httpOnly: true }, 'a session made by hand: the defaults')
})

t.test('cookie mode: save() and reload()', async (t) => {
  const app = await build(t, {}, (app) => {
    app.get('/save', async (request) => {
      request.session.set('a', 1)
      await request.session.save()
      const token = request.session.encryptedSessionId
      request.session.set('b', 2)
      await request.session.reload()
      return { token, data: request.session.data(), modified: request.session.isModified() }
    })
    app.get('/reload', (request, reply) => {
      request.session.set('b', 2)
      void request.session.reload((error) => { reply.send({ error, data: request.session.data() }) })
    })
    app.get('/id', async (request) => ({ id: request.session.sessionId }))
  })
  const saved = await app.inject('/save')
  const { token, data, modified } = saved.json()
  t.same(data, { a: 1 }, 'reload() goes back to what save() made')
  t.equal(modified, false)
  t.equal(setCookie(saved)?.value, token, 'the reply carries the token save() made')
  t.same((await app.decodeSession(token)).data(), { a: 1 })
  t.same((await app.inject({ url: '/reload', cookies: { session: token } })).json(), { error: null, data: { a: 1 } }, 'back to the data the request came with')
  const planted = await app.encodeSession({ [SESSION_ID_KEY]: 'not an id' })
  const id = (await app.inject({ url: '/id', cookies: { session: planted } })).json().id
  t.match(id, /^[A-Za-z0-9_-]{22}$/, 'a stored _sid that is no id is replaced')
})

t.test('store mode: save() after a merge, reload() of a session gone, sessionId across regenerate()', async (t) => {
  const store = memoryStore(t)
  let reloaded: unknown
  const app = await build(t, { store }, (app) => {
    app.get('/merge', async (request) => {
      const other = await app.decodeSession(request.cookies.session)
      // Another request's write lands while this one runs.
      const { sessionId } = request.session
      other.set('theirs', 1)
      await store.put(sessionId, (await store.get(sessionId))?.data as string, null, 1000).catch(() => {})
      request.session.set('mine', 1)
      await request.session.save()
      return { data: request.session.data(), sameId: request.session.sessionId === sessionId }
    })
    app.get('/gone', async (request) => {
      await store.destroy(request.session.sessionId)
      request.session.set('x', 1)
      await request.session.reload()
      reloaded = { isNew: request.session.isNew, data: request.session.data(), token: request.session.encryptedSessionId ?? null }
      return reloaded
    })
    app.get('/unsaved', async (request) => {
      request.session.set('a', 1)
      await request.session.reload()
      return { data: request.session.data() }
    })
    app.get('/new', async (request) => {
      const first = request.session.sessionId
      const again = request.session.sessionId
      request.session.set('a', 1)
      await request.session.save()
      const saved = request.session.sessionId
      await request.session.regenerate(['a'])
      return { same: first === again && first === saved, renewed: request.session.sessionId !== saved, stored: await store.get(request.session.sessionId) !== undefined }
    })
  })
  const cookie = await app.encodeSession({ a: 1 })
  t.match((await app.inject({ url: '/merge', cookies: { session: cookie } })).json(), { data: { a: 1, mine: 1 }, sameId: true })
  t.same((await app.inject({ url: '/gone', cookies: { session: cookie } })).json(), { isNew: true, data: {}, token: null }, 'reload() of a session deleted meanwhile: empty and new')
  t.same((await app.inject('/unsaved')).json(), { data: {} }, 'reload() of a session never stored: empty')
  t.same((await app.inject('/new')).json(), { same: true, renewed: true, stored: true }, 'the id drawn for a new session is the one it is stored under; regenerate() gives another')
})

t.test('store mode: save() merges with a concurrent write and goes on from the merged data', async (t) => {
  const store = memoryStore(t)
  const app = await build(t, { store }, (app) => {
    app.get('/', async (request) => {
      const { sessionId } = request.session
      // Another request adds a key meanwhile.
      const other = await app.inject({ url: '/other', cookies: { session: request.cookies.session as string } })
      request.session.set('mine', 1)
      await request.session.save()
      return { data: request.session.data(), other: other.statusCode, id: sessionId }
    })
    app.get('/other', async (request) => { request.session.set('theirs', 1); return {} })
  })
  const cookie = await app.encodeSession({ a: 1 })
  const response = (await app.inject({ url: '/', cookies: { session: cookie } })).json()
  t.same(response.data, { a: 1, theirs: 1, mine: 1 }, 'the session now holds what is stored')
})

t.test('destroy(): emptied key by key then saved, and destroy after save', async (t) => {
  const store = memoryStore(t)
  const app = await build(t, { store }, (app) => {
    app.get('/empty', async (request) => {
      request.session.delete('a')
      await request.session.save()
      return { size: store.size }
    })
    app.get('/both', async (request) => {
      request.session.set('b', 1)
      await request.session.save()
      await request.session.destroy()
      return { size: store.size }
    })
  })
  const emptied = await app.inject({ url: '/empty', cookies: { session: await app.encodeSession({ a: 1 }) } })
  t.equal(setCookie(emptied)?.value, '', 'an emptied session clears its cookie')
  const both = await app.inject({ url: '/both', cookies: { session: await app.encodeSession({ a: 1 }) } })
  t.equal(setCookie(both)?.value, '', 'destroyed after a save: cleared')
})

t.test('on-demand promises: nothing starts until awaited; then, catch and finally each start it once', async (t) => {
  let destroys = 0
  const store = memoryStore(t)
  const destroy = store.destroy.bind(store)
  store.destroy = async (...args) => { destroys++; return await destroy(...args) }
  const app = await build(t, { store }, (app) => {
    app.get('/bare', async (request) => { void request.session.destroy(); return { destroys } })
    app.get('/chained', async (request) => {
      const ending = request.session.destroy()
      const before = destroys
      await ending.finally(() => {})
      await ending.catch(() => {})
      await ending
      return { before, after: destroys }
    })
  })
  t.same((await app.inject({ url: '/bare', cookies: { session: await app.encodeSession({ a: 1 }) } })).json(), { destroys: 0 }, 'a bare call leaves the work to the reply')
  t.equal(destroys, 1, 'which did it')
  destroys = 0
  t.same((await app.inject({ url: '/chained', cookies: { session: await app.encodeSession({ a: 1 }) } })).json(), { before: 0, after: 1 })
  const plain = new Session({ data: { a: 1 } })
  await plain.save()
  plain.set('a', 2)
  await plain.reload()
  t.same(plain.data(), {}, 'a session made by hand has nothing saved: reload() empties it')
  t.match(plain.sessionId, /^[A-Za-z0-9_-]{22}$/, 'its id is kept in its data')
  t.equal(plain.get(SESSION_ID_KEY), plain.sessionId)
})

t.test('decryptSession: a bad token, a store failure, no callback', async (t) => {
  const store = memoryStore(t)
  const app = await build(t, { store })
  const request = {} as FastifyRequest
  const error = await new Promise((resolve) => { app.decryptSession('garbage', request, resolve) })
  t.equal(error, null)
  t.equal(request.session.isNew, true, 'a new session')
  await new Promise((resolve) => { app.decryptSession(42 as never, request, resolve) })
  t.equal(request.session.isNew, true, 'not a string: a new session')
  const cookie = await app.encodeSession({ a: 1 })
  // SECURITY.md: the id is not a credential; only a token of it made with the key opens the session.
  const { sessionId } = await app.decodeSession(cookie)
  await new Promise((resolve) => { app.decryptSession(sessionId, request, resolve) })
  t.equal(request.session.isNew, true, 'the raw id opens nothing')
  t.equal((await app.decodeSession(sessionId)).isNew, true, 'nor as a cookie')
  store.get = async () => { throw new Error('down') }
  const failure = await new Promise((resolve) => { app.decryptSession(cookie, request, {}, resolve) })
  t.match(failure, { name: 'SessionStoreError' })
  t.throws(() => { (app.decryptSession as (...args: unknown[]) => void)(cookie, request) }, /needs a callback/)
})

t.test('secure: \'auto\' with sameSite \'none\': Lax over HTTP, None over HTTPS, on cleared cookies too', async (t) => {
  const app = await build(t, { cookie: { secure: 'auto', sameSite: 'none' } }, (app) => {
    app.get('/', async (request) => { request.session.set('a', 1); return {} })
  })
  t.match((await app.inject('/')).headers['set-cookie'], /SameSite=Lax$/)
  t.match((await app.inject({ url: '/', headers: { 'x-forwarded-proto': 'https' } })).headers['set-cookie'], /Secure; SameSite=None$/)
  t.match((await app.inject({ url: '/', cookies: { session: 'garbage' } })).headers['set-cookie'], /SameSite=Lax$/)
})

t.test('a @fastify/session app\'s login, logout, save/reload and websocket code, unchanged, in both modes', async (t) => {
  for (const mode of ['cookie', 'store'] as const) {
    await t.test(mode, async (t) => {
      const app = await build(t, mode === 'store' ? { store: memoryStore(t) } : {}, (app) => {
        // Written for @fastify/session: callbacks, no return value, the reply sent from the callback.
        app.post('/login', (request, reply) => {
          void request.session.regenerate((error) => {
            if (error !== null) { reply.send(error); return }
            request.session.set('user', 'ada')
            void request.session.save((error) => { if (error !== null) reply.send(error); else reply.send({ id: request.session.sessionId }) })
          })
        })
        app.get('/me', async (request) => ({ user: request.session.get('user') ?? null, id: request.session.sessionId }))
        app.post('/logout', (request, reply) => { void request.session.destroy((error) => { if (error !== null) reply.send(error); else reply.redirect('/') }) })
        app.post('/logout-async', async (request, reply) => { await request.session.destroy(); return await reply.redirect('/') })
        app.post('/undo', async (request) => { request.session.set('user', 'eve'); await request.session.reload(); return { user: request.session.get('user') } })
      })
      const login = await app.inject({ method: 'POST', url: '/login' })
      const cookie = setCookie(login)?.value as string
      const { id } = login.json()
      t.same((await app.inject({ url: '/me', cookies: { session: cookie } })).json(), { user: 'ada', id }, 'logged in; the id stays the session\'s')
      t.same((await app.inject({ method: 'POST', url: '/undo', cookies: { session: cookie } })).json(), { user: 'ada' })
      // A websocket's upgrade request: the session from its cookie, outside a route.
      const socketRequest = {} as FastifyRequest
      await new Promise<void>((resolve, reject) => { app.decryptSession(cookie, socketRequest, (error) => { if (error !== null) reject(error); else resolve() }) })
      t.equal(socketRequest.session.get('user'), 'ada')
      for (const url of ['/logout', '/logout-async']) {
        const again = setCookie(await app.inject({ method: 'POST', url: '/login' }))?.value as string
        const out = await app.inject({ method: 'POST', url, cookies: { session: again } })
        t.equal(out.statusCode, 302, `${url} answers`)
        t.equal(setCookie(out)?.value, '', 'and clears the cookie')
        if (mode === 'store') t.same((await app.inject({ url: '/me', cookies: { session: again } })).json().user, null, 'the old cookie opens nothing')
      }
    })
  }
})
