// Store mode: an ended session stays ended whatever is in flight when it ends. A logout, a
// destroy() or revokeSessions() that lands while another request of the same session is between
// loading and saving must not be undone by that request: not by its regenerate(), not by a write
// through an express-session store (in this process or on another server), not by a renewal.
// With an express-session store a load reads the record alone (issue 18), so what that costs is
// shown as it is: a late write's record is seen until its answer comes and its check has run,
// and one whose answer never comes stands until the session's next write or its expiry.
// And the express-session adapter never lets one lost callback hold up a session for good.
import t, { type Test } from 'tap'
import FakeTimers from '@sinonjs/fake-timers'
import type { FastifyInstance } from 'fastify'
import encryptedSession, { type EncryptedSessionOptions, Fernet, MemoryStore, type PutResult, type SessionStore } from '../index.js'
import { buildApp, setCookie } from './helpers/app.js'
import { Jar } from './helpers/behaviours.js'
import { CallbackStore } from './helpers/express-stores.js'

const KEY = Fernet.generateKey()

/** A promise the test opens when it chooses. */
function gate (): { opened: Promise<void>, open: () => void } {
  let open: () => void = () => {}
  const opened = new Promise<void>((resolve) => { open = resolve })
  return { opened, open }
}

const tick = async (ms = 20): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** An express-session store (callbacks) that can hold the next write, or deletion, of a session record. */
class HoldingStore extends CallbackStore {
  #held: { opened: Promise<void>, reached: () => void } | undefined
  #heldDestroy: { opened: Promise<void>, reached: () => void } | undefined

  /** Holds the next set() of a session (not of an index or marker); resolves once one is held. */
  holdNextSessionWrite (): { reached: Promise<void>, release: () => void } {
    const { opened, open } = gate()
    const reached = gate()
    this.#held = { opened, reached: reached.open }
    return { reached: reached.opened, release: open }
  }

  /** Holds the next destroy() of a session record; resolves once one is held. */
  holdNextSessionDestroy (): { reached: Promise<void>, release: () => void } {
    const { opened, open } = gate()
    const reached = gate()
    this.#heldDestroy = { opened, reached: reached.open }
    return { reached: reached.opened, release: open }
  }

  override destroy (sid: string, callback: (error?: unknown) => void): void {
    const held = this.#heldDestroy
    if (held === undefined || sid.includes('.')) {
      super.destroy(sid, callback)
      return
    }
    this.#heldDestroy = undefined
    held.reached()
    void held.opened.then(() => { super.destroy(sid, callback) })
  }

  override set (sid: string, session: { cookie: { expires: string } }, callback: (error?: unknown) => void): void {
    const held = this.#held
    if (held === undefined || sid.includes('.')) {
      super.set(sid, session, callback)
      return
    }
    this.#held = undefined
    held.reached()
    void held.opened.then(() => { super.set(sid, session, callback) })
  }
}

class TouchlessStore extends HoldingStore {
  override touch = undefined as unknown as CallbackStore['touch']
}

/** A store whose touch() reads the record and writes it back, as session-file-store's does. */
class RewritingTouchStore extends HoldingStore {
  override touch (sid: string, session: { cookie: { expires: string } }, callback: (error?: unknown) => void): void {
    const read = this.records.get(sid)
    if (read === undefined) setImmediate(() => { callback() })
    else this.set(sid, { ...JSON.parse(read.json), cookie: session.cookie }, callback)
  }
}

/** Waits until `done` holds, checking every few milliseconds, for at most `bound` ms; whether it came to hold. */
async function until (done: () => boolean | Promise<boolean>, bound = 2000): Promise<boolean> {
  const end = Date.now() + bound
  while (!await done()) {
    if (Date.now() > end) return false
    await tick(5)
  }
  return true
}

type Answer = (error?: unknown) => void

/**
 * An express-session store (callbacks) whose next write of a session record (a set, or a touch
 * that rewrites the record as session-file-store's does) the test scripts: `write` carries it
 * out, `answer` answers it, each when the test chooses; what the script returns is the call's
 * return value (a promise, for a store that also answers that way).
 */
class ScriptedStore extends CallbackStore {
  nextWrite: ((write: () => void, answer: Answer) => unknown) | undefined
  markerReads = 0

  override get (sid: string, callback: (error?: unknown, value?: unknown) => void): void {
    if (sid.startsWith('ended.')) this.markerReads++
    super.get(sid, callback)
  }

  override set (sid: string, session: { cookie: { expires: string } }, callback: Answer): unknown {
    const script = sid.startsWith('ended.') ? undefined : this.nextWrite
    if (script === undefined) return super.set(sid, session, callback)
    this.nextWrite = undefined
    return script(() => { this.records.set(sid, { json: JSON.stringify(session), expires: Date.parse(session.cookie.expires) }) }, callback)
  }

  override touch (sid: string, session: { cookie: { expires: string } }, callback: Answer): unknown {
    const script = this.nextWrite
    if (script === undefined) return super.touch(sid, session, callback)
    this.nextWrite = undefined
    // Read now, written back later: what a store that touches by rewriting does.
    const read = this.records.get(sid)
    return script(() => { if (read !== undefined) this.records.set(sid, { ...read, expires: Date.parse(session.cookie.expires) }) }, callback)
  }
}

function routes (app: FastifyInstance, waitFor?: Promise<void>): void {
  app.get('/login/:id', async (request) => { request.session.login({ id: (request.params as { id: string }).id }); return {} })
  app.get('/logout', async (request) => { request.session.logout(); return {} })
  app.get('/set/:key/:value', async (request) => {
    const { key, value } = request.params as { key: string, value: string }
    request.session.set(key, value)
    return {}
  })
  app.get('/fill/:length', async (request) => {
    request.session.set('notes', 'x'.repeat(Number((request.params as { length: string }).length)))
    return {}
  })
  app.get('/read', async (request) => ({ isNew: request.session.isNew, data: request.session.data() }))
  // Routes that load the session, then wait for the test before deciding what to save.
  app.get('/slow/elevate', async (request) => {
    await waitFor
    await request.session.regenerate(['current_user'])
    request.session.set('elevated', true)
    return {}
  })
  // As @fastify/passport logs in: regenerate(), then the user it has just authenticated.
  app.get('/slow/passport-login', async (request) => {
    await waitFor
    await request.session.regenerate()
    request.session.set('passport', 'ada')
    return {}
  })
  app.get('/slow/login', async (request) => {
    await waitFor
    request.session.login({ id: 'ada', again: true })
    return {}
  })
}

async function server (t: Test, options: Partial<EncryptedSessionOptions>, waitFor?: Promise<void>): Promise<FastifyInstance> {
  const { app } = await buildApp({ key: KEY, ...options }, (app) => { routes(app, waitFor) })
  t.teardown(async () => { await app.close() })
  return app
}

const readWith = async (app: FastifyInstance, cookie: string): Promise<unknown> => (await app.inject({ url: '/read', cookies: { session: cookie } })).json()
const ENDED = { isNew: true, data: {} }

t.test('regenerate() in flight does not bring back a session ended meanwhile', async (t) => {
  for (const ending of ['revokeSessions', 'logout'] as const) {
    for (const url of ['/slow/elevate']) {
      await t.test(`${url}, ${ending}`, async (t) => {
        const store = new MemoryStore()
        const { opened, open } = gate()
        const app = await server(t, { store }, opened)
        const jar = new Jar()
        jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
        const stolen = jar.cookies.session as string
        const inFlight = app.inject({ url, cookies: { session: stolen } })
        await tick()
        if (ending === 'logout') t.equal((await app.inject({ url: '/logout', cookies: jar.cookies })).statusCode, 200)
        else await app.revokeSessions('ada')
        open()
        const late = await inFlight
        t.equal(late.statusCode, 200, 'the route itself answered')
        t.equal(setCookie(late), undefined, 'no new session cookie for data copied from an ended session')
        t.equal(store.size, ending === 'logout' ? 0 : 1, 'no session record left (a revoke leaves its user\'s revocation record)')
        t.same(await readWith(app, stolen), ENDED, 'the stolen cookie stays dead')
      })
    }
  }

  await t.test('a login in flight is a new authentication: it stands', async (t) => {
    const store = new MemoryStore()
    const { opened, open } = gate()
    const app = await server(t, { store }, opened)
    const jar = new Jar()
    jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
    const inFlight = app.inject({ url: '/slow/login', cookies: jar.cookies })
    await tick()
    await app.revokeSessions('ada')
    open()
    const cookie = setCookie(await inFlight)?.value as string
    t.ok(cookie, 'the login issues its session')
    t.same(await readWith(app, cookie), { isNew: false, data: { current_user: { id: 'ada', again: true } } })
  })

  await t.test('passport\'s login (regenerate, then the user) twice at once: both stand', async (t) => {
    const store = new MemoryStore()
    const { opened, open } = gate()
    const app = await server(t, { store }, opened)
    const jar = new Jar()
    jar.take(await app.inject({ url: '/set/visit/1', cookies: jar.cookies }))
    // A double-clicked login form: both requests carry the same cookie; the first to save
    // ends the old session, and the second must not lose its login for that.
    const first = app.inject({ url: '/slow/passport-login', cookies: jar.cookies })
    const second = app.inject({ url: '/slow/passport-login', cookies: jar.cookies })
    await tick()
    open()
    for (const response of await Promise.all([first, second])) {
      const cookie = setCookie(response)?.value as string
      t.ok(cookie, 'a session cookie')
      t.same(await readWith(app, cookie), { isNew: false, data: { passport: 'ada' } })
    }
  })

  await t.test('regenerate() of a session nobody ended works as before', async (t) => {
    const store = new MemoryStore()
    const app = await server(t, { store }, Promise.resolve())
    const jar = new Jar()
    jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
    const old = jar.cookies.session as string
    jar.take(await app.inject({ url: '/slow/elevate', cookies: jar.cookies }))
    t.not(jar.cookies.session, old, 'a new session id')
    t.same(await readWith(app, jar.cookies.session as string), { isNew: false, data: { current_user: { id: 'ada' }, elevated: true } })
    t.same(await readWith(app, old), ENDED, 'the old id is gone')
    t.equal(store.size, 1)
  })
})

t.test('express-session stores: a write in flight never undoes a logout or a revocation', async (t) => {
  for (const ending of ['logout', 'revokeSessions'] as const) {
    await t.test(`one server, ${ending}`, async (t) => {
      const store = new HoldingStore()
      const app = await server(t, { store })
      const jar = new Jar()
      jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
      const stolen = jar.cookies.session as string
      const held = store.holdNextSessionWrite()
      const writing = app.inject({ url: '/set/cart/x', cookies: { session: stolen } })
      await held.reached
      // The deletion waits for the write already under way on that session, then deletes.
      const ended = ending === 'logout' ? app.inject({ url: '/logout', cookies: jar.cookies }) : app.revokeSessions('ada')
      await tick()
      held.release()
      await writing
      if (ending === 'logout') t.equal(((await ended) as { statusCode: number }).statusCode, 200)
      else t.equal(await ended, undefined, 'the revoke resolved')
      t.same(await readWith(app, stolen), ENDED, 'the stolen cookie is dead')
    })

    await t.test(`two servers on one store, ${ending}`, async (t) => {
      const store = new HoldingStore()
      const a = await server(t, { store })
      const b = await server(t, { store })
      const jar = new Jar()
      jar.take(await a.inject({ url: '/login/ada', cookies: jar.cookies }))
      const stolen = jar.cookies.session as string
      const held = store.holdNextSessionWrite()
      const writing = a.inject({ url: '/set/cart/x', cookies: { session: stolen } })
      await held.reached
      // Server B knows nothing of A's queue: it ends the session while A's write is on its way.
      if (ending === 'logout') t.equal((await b.inject({ url: '/logout', cookies: jar.cookies })).statusCode, 200)
      else await b.revokeSessions('ada')
      t.same(await readWith(b, stolen), ENDED)
      held.release()
      const late = await writing
      t.equal(late.statusCode, 200)
      t.equal(setCookie(late), undefined, 'the late write issues nothing')
      t.same(await readWith(a, stolen), ENDED, 'A\'s write found the session ended and deleted its record again')
      t.same(await readWith(b, stolen), ENDED)
    })
  }

  await t.test('regenerate() in flight on one server while another has marked the session ended and not yet deleted its record: the copy is dropped', async (t) => {
    const store = new HoldingStore()
    const { opened, open } = gate()
    const a = await server(t, { store }, opened)
    const b = await server(t, { store })
    const jar = new Jar()
    jar.take(await a.inject({ url: '/login/ada', cookies: jar.cookies }))
    const stolen = jar.cookies.session as string
    const inFlight = a.inject({ url: '/slow/elevate', cookies: { session: stolen } })
    await tick()
    const held = store.holdNextSessionDestroy()
    const logout = b.inject({ url: '/logout', cookies: jar.cookies })
    await held.reached
    open()
    const late = await inFlight
    held.release()
    t.equal((await logout).statusCode, 200)
    t.equal(late.statusCode, 200, 'the route itself answered')
    t.equal(setCookie(late), undefined, 'no new session cookie for data copied from an ended session')
    t.same([...store.records.keys()].filter((id) => !id.includes('.')), [], 'no session record left')
    t.same(await readWith(a, stolen), ENDED, 'the stolen cookie stays dead')
  })

  for (const [kind, Store] of [['without touch()', TouchlessStore], ['whose touch() rewrites the record', RewritingTouchStore]] as const) {
    await t.test(`a renewal of a store ${kind} does not bring it back either`, async (t) => {
      const store = new Store()
      const a = await server(t, { store })
      const b = await server(t, { store })
      const jar = new Jar()
      jar.take(await a.inject({ url: '/login/ada', cookies: jar.cookies }))
      const stolen = jar.cookies.session as string
      // Past a quarter of ttl: a read renews, and the record is rewritten, by the adapter (no
      // touch()) or by the store's touch().
      const clock = FakeTimers.install({ now: Date.now() + 7 * 3600_000, toFake: ['Date'] })
      t.teardown(() => { clock.uninstall() })
      const held = store.holdNextSessionWrite()
      const renewing = a.inject({ url: '/read', cookies: { session: stolen } })
      await held.reached
      t.equal((await b.inject({ url: '/logout', cookies: { session: stolen } })).statusCode, 200)
      held.release()
      const late = await renewing
      t.equal(setCookie(late), undefined, 'not renewed')
      t.same(await readWith(a, stolen), ENDED, 'and still ended')
    })
  }
})

t.test('express-session stores: a write the store carries out after we stopped waiting revives nothing once it is answered', async (t) => {
  const store = new ScriptedStore()
  const app = await server(t, { store, storeTimeout: 100 })
  const jar = new Jar()
  jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
  const stolen = jar.cookies.session as string
  // The next write of a session record is carried out, and answered, only after the adapter gave up.
  let carryOut: () => void = () => {}
  let answer: Answer = () => {}
  store.nextWrite = (write, answerIt) => { carryOut = write; answer = answerIt }
  t.equal((await app.inject({ url: '/set/cart/x', cookies: { session: stolen } })).statusCode, 503, 'the write timed out')
  t.equal((await app.inject({ url: '/logout', cookies: jar.cookies })).statusCode, 200, 'the user logs out')
  carryOut()
  // What the README gives up for a load of one store call: until the store answers the write
  // and the marker has been read after it, a load sees the record it brought back.
  t.same(await readWith(app, stolen), { isNew: false, data: { current_user: { id: 'ada' }, cart: 'x' } }, 'the late write landed, and is seen until it is answered')
  answer()
  t.ok(await until(async () => JSON.stringify(await readWith(app, stolen)) === JSON.stringify(ENDED)), 'once answered, the marker is found and the record deleted again: the stolen cookie is dead')
})

t.test('express-session stores: a write the store carries out but never answers stands until the session\'s next write or its expiry', async (t) => {
  for (const ending of ['a later write', 'its expiry'] as const) {
    await t.test(ending, async (t) => {
      const store = new ScriptedStore()
      const app = await server(t, { store, storeTimeout: 100, ttl: 3600 })
      const jar = new Jar()
      jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
      const stolen = jar.cookies.session as string
      const id = [...store.records.keys()].find((key) => !key.includes('.')) as string
      let carryOut: () => void = () => {}
      store.nextWrite = (write) => { carryOut = write }
      t.equal((await app.inject({ url: '/set/cart/x', cookies: { session: stolen } })).statusCode, 503, 'the write timed out')
      t.equal((await app.inject({ url: '/logout', cookies: jar.cookies })).statusCode, 200, 'the user logs out')
      const landed = Date.now()
      carryOut()
      // No answer, so no check: nothing tells this server the write happened.
      await tick()
      t.same(await readWith(app, stolen), { isNew: false, data: { current_user: { id: 'ada' }, cart: 'x' } }, 'the stolen cookie opens the session the late write brought back')
      t.ok((store.records.get(id)?.expires as number) <= landed + 3600_000, 'a record the store expires at most ttl after the write')
      if (ending === 'a later write') {
        const written = await app.inject({ url: '/set/cart/y', cookies: { session: stolen } })
        t.equal(setCookie(written), undefined, 'a write of it issues nothing')
        t.notOk(store.records.has(id), 'its check found the marker and deleted the record')
      } else {
        const clock = FakeTimers.install({ now: landed + 3600_000 + 1000, toFake: ['Date'] })
        t.teardown(() => { clock.uninstall() })
        t.equal(await new Promise((resolve) => { store.get(id, (_error, value) => { resolve(value) }) }), null, 'the store no longer gives the record')
      }
      t.same(await readWith(app, stolen), ENDED, 'and the stolen cookie is dead')
    })
  }
})

t.test('express-session adapter: a write that failed or was answered late is checked for the marker when the answer comes', async (t) => {
  const { ExpressStoreAdapter } = await import('../lib/stores/express.js')
  const options = { plain: false, timeout: 50, endedFor: 60_000 }
  /** A stored session, and two servers on the store: `here` writes it, `there` ends it. */
  const setUp = async (store: ScriptedStore): Promise<{ here: InstanceType<typeof ExpressStoreAdapter>, there: InstanceType<typeof ExpressStoreAdapter> }> => {
    const here = new ExpressStoreAdapter(store, options)
    const there = new ExpressStoreAdapter(store, options)
    t.same(await here.put('s', 'token-1', null, 60_000), { ok: true, version: 1 })
    return { here, there }
  }
  const timedOut = /the store did not answer (set|touch) within 50 ms/

  for (const write of ['put', 'touch', 'touch without touch()'] as const) {
    await t.test(`${write}: carried out and answered after the timeout, once the session was ended elsewhere`, async (t) => {
      const store = new ScriptedStore()
      if (write === 'touch without touch()') store.touch = undefined as unknown as ScriptedStore['touch']
      const { here, there } = await setUp(store)
      let land: () => void = () => {}
      store.nextWrite = (carryOut, answer) => { land = () => { carryOut(); answer() } }
      const writing: Promise<unknown> = write === 'put' ? here.put('s', 'token-2', 1, 60_000) : here.touch('s', 60_000)
      await t.rejects(writing, timedOut, 'the write counts as failed')
      t.equal(await there.destroy('s'), true, 'ended on the other server')
      t.notOk(store.records.has('s'), 'its record deleted')
      land()
      t.ok(store.records.has('s'), 'the late write landed: the record is back')
      t.ok(await until(() => !store.records.has('s')), 'and its late answer had the record deleted again')
      t.ok(store.records.has('ended.s'), 'the marker stays')
    })
  }

  await t.test('answered with an error, after the write was carried out', async (t) => {
    const store = new ScriptedStore()
    const { here, there } = await setUp(store)
    store.nextWrite = (carryOut, answer) => {
      // Ended elsewhere between this write's read and the write itself.
      void there.destroy('s').then(() => { carryOut(); answer(new Error('connection reset')) })
    }
    await t.rejects(here.put('s', 'token-2', 1, 60_000), /connection reset/)
    t.ok(await until(() => !store.records.has('s')), 'the record is deleted again all the same')
  })

  await t.test('answered late with an error', async (t) => {
    const store = new ScriptedStore()
    const { here, there } = await setUp(store)
    let land: () => void = () => {}
    store.nextWrite = (carryOut, answer) => { land = () => { carryOut(); answer(new Error('connection reset')) } }
    await t.rejects(here.put('s', 'token-2', 1, 60_000), timedOut)
    await there.destroy('s')
    land()
    t.ok(await until(() => !store.records.has('s')), 'deleted again')
  })

  await t.test('a write that throws rather than answer', async (t) => {
    const store = new ScriptedStore()
    const { here } = await setUp(store)
    // Marked as ended by another server, which has not deleted the record yet.
    store.records.set('ended.s', { json: JSON.stringify({ cookie: {} }), expires: Date.now() + 60_000 })
    store.nextWrite = (carryOut) => {
      carryOut()
      throw new Error('socket closed')
    }
    await t.rejects(here.touch('s', 60_000), /socket closed/)
    t.ok(await until(() => !store.records.has('s')), 'checked, and deleted again')
  })

  await t.test('answered twice (callback and promise), late: checked once', async (t) => {
    const store = new ScriptedStore()
    const { here } = await setUp(store)
    let land: () => void = () => {}
    store.nextWrite = async (carryOut, answer) => {
      await new Promise<void>((resolve) => { land = resolve })
      carryOut()
      answer()
    }
    await t.rejects(here.put('s', 'token-2', 1, 60_000), timedOut)
    const before = store.markerReads
    land()
    t.ok(await until(() => store.markerReads > before), 'checked')
    await tick()
    t.equal(store.markerReads, before + 1, 'once')
    t.ok(store.records.has('s'), 'a session nobody ended is left as written')
  })

  await t.test('a check that fails has nobody to tell: no unhandled rejection, no crash', async (t) => {
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
    process.on('unhandledRejection', onUnhandled)
    t.teardown(() => { process.off('unhandledRejection', onUnhandled) })
    const store = new ScriptedStore()
    const { here } = await setUp(store)
    let land: () => void = () => {}
    store.nextWrite = (carryOut, answer) => { land = () => { carryOut(); answer() } }
    await t.rejects(here.put('s', 'token-2', 1, 60_000), timedOut)
    const get = store.get.bind(store)
    let failed = 0
    store.get = (sid, callback) => {
      if (!sid.startsWith('ended.')) return get(sid, callback)
      failed++
      callback(new Error('down'))
    }
    land()
    t.ok(await until(() => failed === 1), 'the check was made, and its read failed')
    await tick()
    t.same(unhandled, [], 'nothing unhandled')
    t.ok(store.records.has('s'), 'the write stands: nothing else could be done')
  })

  await t.test('a new id, or one of the plugin\'s own records, written late: nothing to check', async (t) => {
    const store = new ScriptedStore()
    const here = new ExpressStoreAdapter(store, options)
    t.same(await here.put('rev.user', 'generation-1', null, 60_000), { ok: true, version: 1 })
    for (const [id, expected] of [['new', null], ['rev.user', 1]] as const) {
      let land: () => void = () => {}
      store.nextWrite = (carryOut, answer) => { land = () => { carryOut(); answer() } }
      await t.rejects(here.put(id, 'token', expected, 60_000), timedOut)
      const before = store.markerReads
      land()
      await tick()
      t.equal(store.markerReads, before, `${id}: no marker read once answered`)
      t.ok(store.records.has(id), `${id}: written`)
    }
  })
})

t.test('a failed save of one registration does not stop another\'s', async (t) => {
  for (const order of ['store first', 'store second'] as const) {
    const broken = new MemoryStore()
    broken.put = async () => { throw new Error('down') }
    const { app } = await buildApp({ key: KEY, ...(order === 'store first' ? { store: broken } : {}) }, (app) => {
      void app.register(encryptedSession, { key: Fernet.generateKey(), sessionName: 'prefs', cookieName: 'prefs', ...(order === 'store second' ? { store: broken } : {}) })
      app.get('/both', async (request) => {
        request.session.set('a', 1)
        ;(request as unknown as { prefs: { set: (key: string, value: unknown) => void } }).prefs.set('b', 2)
        return {}
      })
    })
    t.teardown(async () => { await app.close() })
    const response = await app.inject('/both')
    t.equal(response.statusCode, 503, `${order}: the failed save answers 503`)
    const cookieSession = order === 'store first' ? 'prefs' : 'session'
    t.ok(setCookie(response, cookieSession)?.value, `${order}: the cookie-mode registration still saved its session`)
  }
})

t.test('express-session stores: one lost callback does not hold up the session for good', async (t) => {
  const store = new CallbackStore()
  let lose: ((sid: string) => boolean) | undefined
  const set = store.set.bind(store)
  // A store that drops the callback of one write, as a lost connection can.
  store.set = (sid, session, callback) => {
    if (lose?.(sid) === true) {
      lose = undefined
      return
    }
    set(sid, session, callback)
  }
  const app = await server(t, { store, storeTimeout: 100 })
  const jar = new Jar()
  jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
  lose = (sid) => !sid.includes('.')
  t.equal((await app.inject({ url: '/set/cart/x', cookies: jar.cookies })).statusCode, 503, 'the write that got no answer: 503')
  jar.take(await app.inject({ url: '/set/cart/y', cookies: jar.cookies }))
  t.same(await readWith(app, jar.cookies.session as string), { isNew: false, data: { current_user: { id: 'ada' }, cart: 'y' } }, 'the next write of that session goes through')
  const other = new Jar()
  other.take(await app.inject({ url: '/login/ada', cookies: other.cookies }))
  lose = (sid) => sid.startsWith('rev.')
  await t.rejects(app.revokeSessions('ada'), { name: 'SessionStoreError' }, 'a revoke whose write got no answer rejects')
  await app.revokeSessions('ada')
  t.same(await readWith(app, jar.cookies.session as string), ENDED, 'and the next one goes through: both sessions ended')
  t.same(await readWith(app, other.cookies.session as string), ENDED)
})

t.test('MemoryStore refuses a session larger than its whole bound, rather than dropping it', async (t) => {
  const store = new MemoryStore({ maxBytes: 20_000 })
  const app = await server(t, { store })
  const jar = new Jar()
  jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
  const big = await app.inject({ url: '/fill/12000', cookies: jar.cookies })
  t.equal(big.statusCode, 500, 'the save failed, and the reply says so (not as an outage: test/memory-store.test.ts)')
  t.equal(setCookie(big), undefined)
  t.same(await readWith(app, jar.cookies.session as string), { isNew: false, data: { current_user: { id: 'ada' } } }, 'the session as it was is still there')
  await t.rejects(store.put('id', 'x'.repeat(10_000), null, 1000), { name: 'StoreRefusal', reason: 'too-large', message: 'a record of 20068 bytes does not fit in maxBytes (20000)' })
})

t.test('a store that reports every new id taken: 503 after a few, not a loop', async (t) => {
  let puts = 0
  const inner = new MemoryStore()
  const store: SessionStore = {
    get: async (id) => await inner.get(id),
    put: async (): Promise<PutResult> => { puts++; return { ok: false, current: { data: 'x', version: 1 } } },
    touch: async (id, ttl, user) => await inner.touch(id, ttl, user),
    destroy: async (id, user) => { await inner.destroy(id, user) }
  }
  const { app, logs } = await buildApp({ key: KEY, store }, (app) => { routes(app) })
  t.teardown(async () => { await app.close() })
  t.equal((await app.inject('/login/ada')).statusCode, 503)
  t.equal(puts, 4, 'four ids tried')
  t.ok(logs.some((line) => /4 new session ids in a row were reported taken/.test(String((line.err as { message?: string } | undefined)?.message))))
})
