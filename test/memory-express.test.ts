// MemoryStore as an express-session / @fastify/session store (issue 19): memoryStore.expressStore()
// is an EventEmitter with get/set/destroy/touch and callbacks, over the same records and bounds
// as the plugin's store, with express-session's semantics (one callback a call, null for a
// missing session, expiry from the cookie).
import t, { type Test } from 'tap'
import fastifyCookie from '@fastify/cookie'
import Fastify, { type FastifyInstance, type FastifyPluginCallback } from 'fastify'
import { EventEmitter } from 'node:events'
import { createRequire } from 'node:module'
import { Fernet, type ExpressSessionLike, type MemoryExpressStore, MemoryStore } from '../index.js'
import { buildApp } from './helpers/app.js'
import { Jar } from './helpers/behaviours.js'

// Loaded untyped: @fastify/session's declarations would give FastifyRequest.session its type.
const require = createRequire(import.meta.url)
const fastifySession = require('@fastify/session') as FastifyPluginCallback<Record<string, unknown>>
interface TheirSession { get: (key: string) => unknown, set: (key: string, value: unknown) => void, destroy: (callback: (error?: unknown) => void) => void, sessionId: string }
const theirs = (request: unknown): TheirSession => (request as { session: TheirSession }).session

async function theirApp (t: Test, store: MemoryExpressStore, maxAge = 60_000): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifyCookie)
  await app.register(fastifySession, { secret: 'a'.repeat(32), store, saveUninitialized: false, cookie: { secure: false, maxAge } })
  app.get('/visit', async (request) => {
    const session = theirs(request)
    session.set('visits', ((session.get('visits') as number | undefined) ?? 0) + 1)
    return { visits: session.get('visits') }
  })
  app.get('/login/:id', async (request) => { theirs(request).set('passport', { user: (request.params as { id: string }).id }); return {} })
  app.get('/me', async (request) => ({ user: (theirs(request).get('passport') as { user?: string } | undefined)?.user ?? null }))
  app.get('/logout', async (request, reply) => {
    await new Promise<void>((resolve, reject) => { theirs(request).destroy((error) => { if (error === undefined || error === null) resolve(); else reject(error) }) })
    return await reply.send({ done: true })
  })
  await app.ready()
  t.teardown(async () => { await app.close() })
  return app
}

/** Calls a callback method and gives every call of its callback. */
async function calls (run: (callback: (...args: unknown[]) => void) => void): Promise<unknown[][]> {
  const seen: unknown[][] = []
  run((...args) => { seen.push(args) })
  await new Promise((resolve) => setTimeout(resolve, 5))
  return seen
}

t.test('@fastify/session runs on memoryStore.expressStore(): login, reads, logout, expiry from its cookie', async (t) => {
  const memory = new MemoryStore()
  t.teardown(() => { memory.close() })
  const view = memory.expressStore()
  t.ok(view instanceof EventEmitter, 'an EventEmitter, as express-session stores are')
  const app = await theirApp(t, view)
  const jar = new Jar()
  t.same(jar.take(await app.inject({ url: '/visit', cookies: jar.cookies })).json(), { visits: 1 })
  t.same(jar.take(await app.inject({ url: '/visit', cookies: jar.cookies })).json(), { visits: 2 }, 'read back from the store')
  t.equal(memory.size, 1, 'one record in the MemoryStore, counted in its bounds')
  jar.take(await app.inject({ url: '/login/ada', cookies: jar.cookies }))
  t.same((await app.inject({ url: '/me', cookies: jar.cookies })).json(), { user: 'ada' })
  const copy = { ...jar.cookies }
  t.same(jar.take(await app.inject({ url: '/logout', cookies: jar.cookies })).json(), { done: true }, 'destroy() called back: the logout route answered')
  t.same((await app.inject({ url: '/me', cookies: copy })).json(), { user: null }, 'a copy of the logged-out cookie opens nothing')
  t.equal(memory.size, 0)

  const brief = await theirApp(t, memory.expressStore(), 50)
  const briefJar = new Jar()
  briefJar.take(await brief.inject({ url: '/visit', cookies: briefJar.cookies }))
  t.same((await brief.inject({ url: '/visit', cookies: briefJar.cookies })).json(), { visits: 2 })
  await new Promise((resolve) => setTimeout(resolve, 80))
  t.same((await brief.inject({ url: '/visit', cookies: briefJar.cookies })).json(), { visits: 1 }, 'past its cookie\'s maxAge the session is gone from the store')
})

t.test('one MemoryStore for the plugin and @fastify/session: the same bounds, visitors of either go first', async (t) => {
  const memory = new MemoryStore({ maxEntries: 200 })
  t.teardown(() => { memory.close() })
  const { app: ours } = await buildApp({ key: Fernet.generateKey(), store: memory }, (app) => {
    app.get('/login/:id', async (request) => { request.session.login({ id: (request.params as { id: string }).id }); return {} })
    app.get('/me', async (request) => ({ user: (request.session.user as { id: string } | undefined)?.id ?? null }))
    app.get('/visit', async (request) => { request.session.set('seen', true); return {} })
  })
  t.teardown(async () => { await ours.close() })
  const app = await theirApp(t, memory.expressStore())
  const ourUsers: Jar[] = []
  const theirUsers: Jar[] = []
  for (let i = 0; i < 10; i++) {
    const jar = new Jar()
    jar.take(await ours.inject({ url: `/login/u${i}`, cookies: jar.cookies }))
    ourUsers.push(jar)
    const other = new Jar()
    other.take(await app.inject({ url: `/login/u${i}`, cookies: other.cookies }))
    theirUsers.push(other)
  }
  for (let i = 0; i < 300; i++) {
    await ours.inject('/visit')
    await app.inject('/visit')
  }
  t.equal(memory.size, 200, 'both kinds of visitor within the one bound')
  let kept = 0
  for (const [i, jar] of ourUsers.entries()) if ((await ours.inject({ url: '/me', cookies: jar.cookies })).json().user === `u${i}`) kept++
  for (const [i, jar] of theirUsers.entries()) if ((await app.inject({ url: '/me', cookies: jar.cookies })).json().user === `u${i}`) kept++
  t.equal(kept, 20, '10 users of each plugin, all still logged in')
})

t.test('express-session\'s semantics: one callback a call, null for a missing session, expiry from cookie.expires or maxAge', async (t) => {
  const memory = new MemoryStore({ maxEntries: 3, maxBytes: 2_000 })
  t.teardown(() => { memory.close() })
  const view = memory.expressStore()
  t.same(await calls((done) => { view.get('missing', done) }), [[null, null]], 'missing: null, once')
  const expires = new Date(Date.now() + 60_000)
  t.same(await calls((done) => { view.set('a', { cookie: { expires, originalMaxAge: 60_000 }, n: 1 }, done) }), [[null, undefined]])
  t.same(await calls((done) => { view.get('a', done) }), [[null, { cookie: { expires: expires.toISOString(), originalMaxAge: 60_000 }, n: 1 }]], 'stored as JSON, as express-session\'s MemoryStore does')
  t.same(await calls((done) => { view.set('past', { cookie: { expires: new Date(Date.now() - 1) } }, done) }), [[null, undefined]])
  t.same(await calls((done) => { view.get('past', done) }), [[null, null]], 'a cookie already expired stores nothing')
  view.set('bad-date', { cookie: { expires: 'not a date' } })
  t.same(await calls((done) => { view.get('bad-date', done) }), [[null, null]], 'nor one whose expiry cannot be read')
  view.set('brief', { cookie: { maxAge: 20 } })
  view.set('plain', { cookie: {}, n: 2 })
  t.ok(await new Promise((resolve) => { view.get('brief', (_error, session) => { resolve(session) }) }), 'without a callback, set() still stores')
  await new Promise((resolve) => setTimeout(resolve, 40))
  t.same(await calls((done) => { view.get('brief', done) }), [[null, null]], 'expired by its maxAge')
  // touch() renews by the cookie given, and keeps the stored data.
  view.set('short', { cookie: { originalMaxAge: 30 }, n: 3 })
  t.same(await calls((done) => { view.touch('short', { cookie: { originalMaxAge: 60_000 }, n: 99 }, done) }), [[null, undefined]])
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(await calls((done) => { view.get('short', done) }), [[null, { cookie: { originalMaxAge: 60_000 }, n: 3 }]], 'renewed, with its own data')
  t.same(await calls((done) => { view.touch('gone', { cookie: {} }, done) }), [[null, undefined]], 'touching a missing session is no error')
  view.touch('gone', { cookie: {} })
  t.same(await calls((done) => { view.destroy('short', done) }), [[null, undefined]])
  view.destroy('short')
  t.same(await calls((done) => { view.get('short', done) }), [[null, null]])
  // A session over maxBytes, or a visitor's when only logged-in ones are left: the error, once.
  const big = await calls((done) => { view.set('big', { cookie: {}, blob: 'x'.repeat(2_000) }, done) })
  t.match(big, [[{ name: 'StoreRefusal', reason: 'too-large' }]], 'too large: the error to the callback')
  t.equal(big.length, 1)
  for (const id of ['u1', 'u2', 'u3']) view.set(id, { cookie: {}, passport: { user: id } })
  t.match(await calls((done) => { view.set('visitor', { cookie: {}, passport: { user: null } }, done) }), [[{ reason: 'full' }]], 'only logged-in sessions left: a visitor is refused')
  t.same(await calls((done) => { view.get('u1', done) }), [[null, { cookie: {}, passport: { user: 'u1' } }]])
  const custom = memory.expressStore({ loggedIn: (session) => session.role === 'member', ttl: 20 })
  custom.set('member', { role: 'member' })
  t.equal(await new Promise((resolve) => { view.get('u2', (_error, session) => { resolve(session) }) }), null, 'guarded by loggedIn(): a login pushed out the least recently used login')
  await new Promise((resolve) => setTimeout(resolve, 40))
  t.same(await calls((done) => { custom.get('member', done) }), [[null, null]], 'a session with no cookie lives ttl')
  // A callback that throws is not called again with its own error.
  let thrown = 0
  t.throws(() => { view.get('u1', () => { thrown++; throw new Error('route bug') }) }, /route bug/)
  t.equal(thrown, 1)
  t.throws(() => { view.get('missing', () => { thrown++; throw new Error('route bug') }) }, /route bug/)
  t.throws(() => { view.set('big', { blob: 'x'.repeat(2_000) }, () => { thrown++; throw new Error('route bug') }) }, /route bug/)
  t.equal(thrown, 3)
})

t.test('express-session\'s own Store class as the base: its load() and createSession() work over the view', async (t) => {
  const session = require('express-session') as { Store: new () => EventEmitter }
  const memory = new MemoryStore()
  t.teardown(() => { memory.close() })
  const view = memory.expressStore({ Store: session.Store })
  t.ok(view instanceof session.Store)
  const expires = new Date(Date.now() + 60_000)
  view.set('sid', { cookie: { expires, originalMaxAge: 60_000, path: '/', httpOnly: true }, passport: { user: 'ada' } })
  const loaded = await new Promise<ExpressSessionLike & { cookie: { expires: unknown } }>((resolve, reject) => {
    (view as unknown as { load: (sid: string, callback: (error: unknown, session: unknown) => void) => void }).load('sid', (error, value) => { if (error === null || error === undefined) resolve(value as never); else reject(error) })
  })
  t.same(loaded.passport, { user: 'ada' })
  t.ok(loaded.cookie.expires instanceof Date && loaded.cookie.expires.getTime() === expires.getTime(), 'the cookie\'s expiry restored as a Date')
  for (const bad of [{ Store: 'x' }, { loggedIn: 1 }, { ttl: 0 }, { ttl: 1.5 }]) {
    t.throws(() => memory.expressStore(bad as never), { name: 'TypeError', message: /^MemoryStore\.expressStore: / })
  }
})
