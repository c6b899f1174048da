// Revocation across server processes sharing one Redis (test/fixtures/store-server.mjs, over
// real HTTP), records of the release before upgraded in place, and the work of a login, a
// load and a revoke counted in store operations at 1 and at 50,000 sessions of one user, and
// call by call for a load through an express-session store.
import t, { type Test } from 'tap'
import { createClient } from 'redis'
import type { FastifyInstance } from 'fastify'
import { type EncryptedSessionOptions, Fernet } from '../index.js'
import { RedisStore } from '../lib/stores/redis.js'
import { buildApp, setCookie } from './helpers/app.js'
import type { ExpressStoreLike } from '../lib/stores/store.js'
import { CallbackStore } from './helpers/express-stores.js'
import { requireStores, serversMissing, startRedis } from './helpers/servers.js'
import { type ChildServer, startChildServer, httpBrowser } from './helpers/child-server.js'

const skip = requireStores ? undefined : serversMissing('redis')
const KEY = Fernet.generateKey()
// Real servers, 1,001 and 50,000 sessions on a shared 2-core box: tap's 30 s a file is too short. A bound only.
t.setTimeout(600000)
const ENDED = { isNew: true, data: {} }

// eslint-disable-next-line @typescript-eslint/explicit-function-return-type -- node-redis's client type is best inferred
async function connect (t: Test, url: string) {
  const client = createClient({ url })
  client.on('error', () => {})
  await client.connect()
  t.teardown(async () => { client.destroy() })
  return client
}


async function twoServers (t: Test, env: Record<string, string>): Promise<[ChildServer, ChildServer]> {
  const redis = await startRedis(t)
  const start = async (): Promise<ChildServer> => await startChildServer(t, 'store-server.mjs', { REDIS_URL: redis.url, KEYS: KEY, ...env })
  return await Promise.all([start(), start()])
}

const SETUPS: Array<{ name: string, env: Record<string, string> }> = [
  { name: 'connect-redis (an express-session store)', env: { STORE: 'connect-redis' } },
  { name: 'RedisStore', env: {} },
  { name: 'cookie mode with RedisStore as revocationStore', env: { MODE: 'cookie' } },
  { name: 'cookie mode with connect-redis as revocationStore', env: { MODE: 'cookie', STORE: 'connect-redis' } }
]

for (const { name, env } of SETUPS) {
  t.test(`${name}, two servers: 40 parallel logins, then a revoke ends them all; logins during a revoke; after it`, { skip }, async (t) => {
    const [a, b] = await twoServers(t, env)
    const users = Array.from({ length: 40 }, () => httpBrowser())
    await Promise.all(users.map(async (user, i) => await user.get(i % 2 === 0 ? a : b, '/login/ada')))
    t.equal(users.filter((user) => user.cookie() !== '').length, 40, '40 sessions')
    t.same((await httpBrowser().get(a, '/revoke/ada', 'POST')).body, { revoked: true })
    const reads = await Promise.all(users.map(async (user, i) => (await user.get(i % 2 === 0 ? b : a, '/read')).body.isNew))
    t.same(reads, Array(40).fill(true), 'every one of the 40 is ended, on both servers')

    // 40 logins on B while A revokes: whichever stand, the next revoke ends them all.
    const during = Array.from({ length: 40 }, () => httpBrowser())
    await Promise.all([
      httpBrowser().get(a, '/revoke/ada', 'POST'),
      ...during.map(async (user, i) => await user.get(i % 2 === 0 ? b : a, '/login/ada'))
    ])
    const after = httpBrowser()
    await after.get(b, '/login/ada')
    t.same((await after.get(a, '/read')).body.data, { current_user: { id: 'ada' } }, 'a login after the call resolved stands')
    t.same((await httpBrowser().get(b, '/revoke/ada', 'POST')).body, { revoked: true })
    const later = await Promise.all([...during, after].map(async (user) => (await user.get(a, '/read')).body.isNew))
    t.same(later, Array(41).fill(true), 'a later call ends everything an earlier one could have missed')

    // Log out my other devices, across servers.
    const phone = httpBrowser()
    const laptop = httpBrowser()
    await phone.get(a, '/login/ada')
    await laptop.get(b, '/login/ada')
    await laptop.get(b, '/set/theme/dark')
    t.same((await laptop.get(b, '/revoke-others', 'POST')).body, { revoked: true })
    t.same((await laptop.get(a, '/read')).body.data, { current_user: { id: 'ada' }, theme: 'dark' }, 'except: the current session stands on the other server')
    t.same((await phone.get(a, '/read')).body.data, {}, 'every other session is ended')
  })
}

// The release before this one, writing as it did: sessions, the per-user index, ended markers.
t.test('upgrade: RedisStore records of the release before keep working; revocation ends them; its sets expire', { skip }, async (t) => {
  const redis = await startRedis(t)
  const client = await connect(t, redis.url)
  const fernet = new Fernet(KEY)
  const oldSession = async (id: string, json: string): Promise<string> => {
    await client.hSet(`fes:s:${id}`, { v: '3', d: await fernet.encrypt(`${id}:${json}`) })
    await client.pExpire(`fes:s:${id}`, 86_400_000)
    return await fernet.encrypt(id)
  }
  const listed = await oldSession('AAAAAAAAAAAAAAAAAAAAAA', '{"current_user":{"id":"ada"},"cart":1}')
  const anonymous = await oldSession('BBBBBBBBBBBBBBBBBBBBBB', '{"visits":4}')
  await client.sAdd('fes:u:someHmacOfAda', 'AAAAAAAAAAAAAAAAAAAAAA')
  await client.pExpire('fes:u:someHmacOfAda', 86_400_000)
  const { app } = await buildApp({ key: KEY, store: new RedisStore({ client }) }, (app) => {
    app.get('/read', async (request) => ({ isNew: request.session.isNew, data: request.session.data() }))
    app.get('/set', async (request) => { request.session.set('seen', true); return {} })
  })
  t.teardown(async () => { await app.close() })
  const read = async (cookie: string): Promise<unknown> => (await app.inject({ url: '/read', cookies: { session: cookie } })).json()
  t.same(await read(listed), { isNew: false, data: { current_user: { id: 'ada' }, cart: 1 } }, 'nobody is logged out by the upgrade')
  t.equal((await app.inject({ url: '/set', cookies: { session: listed } })).statusCode, 200, 'and an old session is written as before')
  t.same(await read(anonymous), { isNew: false, data: { visits: 4 } })
  await app.revokeSessions('ada')
  t.same(await read(listed), ENDED, 'a revoke ends a session stored by the release before')
  t.same(await read(anonymous), { isNew: false, data: { visits: 4 } })
  t.ok(await client.pTTL('fes:u:someHmacOfAda') > 0, 'the old per-user set is left to expire by itself')
})

t.test('upgrade: express-store records of the release before: index records ignored; what it ended stays ended', async (t) => {
  const store = new CallbackStore()
  const fernet = new Fernet(KEY)
  const cookie = { originalMaxAge: 86_400_000, expires: new Date(Date.now() + 86_400_000).toISOString() }
  const put = (sid: string, value: unknown): void => { store.records.set(sid, { json: JSON.stringify(value), expires: Date.parse(cookie.expires) }) }
  const oldSession = async (id: string, json: string): Promise<string> => {
    put(id, { cookie, version: 2, data: await fernet.encrypt(`${id}:${json}`) })
    return await fernet.encrypt(id)
  }
  // The oldest of 1,001: fallen off the old index's 1,000 ids, which the old revoke never ended.
  const unlisted = await oldSession('AAAAAAAAAAAAAAAAAAAAAA', '{"current_user":{"id":"ada"}}')
  const listed = await oldSession('CCCCCCCCCCCCCCCCCCCCCC', '{"current_user":{"id":"ada"}}')
  put('user.someHmacOfAda', { cookie, ids: ['CCCCCCCCCCCCCCCCCCCCCC', ...Array.from({ length: 999 }, (_, i) => `x${i}`.padEnd(22, 'x'))] })
  // Ended by the release before as this one ends a session: its marker written, its record deleted.
  const loggedOut = await oldSession('DDDDDDDDDDDDDDDDDDDDDD', '{"current_user":{"id":"bob"}}')
  put('ended.DDDDDDDDDDDDDDDDDDDDDD', { cookie })
  store.records.delete('DDDDDDDDDDDDDDDDDDDDDD')
  // Ended too, but a write that landed afterwards without its check (the release before checked
  // only writes answered in time) brought the record back beside its marker: that release hid
  // it at every load; this one reads no marker on a load, and finds it at the next write.
  const revived = await oldSession('EEEEEEEEEEEEEEEEEEEEEE', '{"current_user":{"id":"eve"}}')
  put('ended.EEEEEEEEEEEEEEEEEEEEEE', { cookie })
  const { app } = await buildApp({ key: KEY, store }, (app) => {
    app.get('/read', async (request) => ({ isNew: request.session.isNew, data: request.session.data() }))
    app.get('/set', async (request) => { request.session.set('seen', true); return {} })
  })
  t.teardown(async () => { await app.close() })
  const read = async (token: string): Promise<unknown> => (await app.inject({ url: '/read', cookies: { session: token } })).json()
  t.same(await read(unlisted), { isNew: false, data: { current_user: { id: 'ada' } } }, 'nobody is logged out by the upgrade')
  t.same(await read(loggedOut), ENDED, 'a session the release before ended stays ended')
  t.same(await read(revived), { isNew: false, data: { current_user: { id: 'eve' } } }, 'a record a late write brought back beside its marker loads again (README, upgrade)')
  await app.inject({ url: '/set', cookies: { session: revived } })
  t.same(await read(revived), ENDED, 'until its next write finds the marker')
  await app.revokeSessions('ada')
  t.same(await read(unlisted), ENDED, 'a revoke ends every old session, listed or not')
  t.same(await read(listed), ENDED)
  t.ok(Date.parse(JSON.parse(store.records.get('user.someHmacOfAda')?.json as string).cookie.expires) > Date.now(), 'the old index record is left to its store\'s expiry')
})

/** Store operations one step costs: Redis commands (scripts' own included), or express-store calls. */
interface Counter { reset: () => Promise<void>, count: () => Promise<number> }

async function opsOf (counter: Counter, step: () => Promise<unknown>): Promise<number> {
  await counter.reset()
  await step()
  return await counter.count()
}

async function countedApp (t: Test, options: Partial<EncryptedSessionOptions>): Promise<FastifyInstance> {
  // Making 50,000 sessions at once on a shared 2-core box: room for a slow answer.
  const { app } = await buildApp({ key: KEY, storeTimeout: 30_000, ...options }, (app) => {
    app.get('/login/:id', async (request) => { request.session.login({ id: (request.params as { id: string }).id }); return {} })
    app.get('/read', async (request) => ({ user: request.session.user ?? null }))
  })
  t.teardown(async () => { await app.close() })
  return app
}

type Step = 'login' | 'load' | 'revoke'

/**
 * login, load and revoke of a user with one session, and of one with 50,000: their store
 * operations, the same at both, and `exact` when given (the README's cost table).
 */
async function costsAt (t: Test, app: FastifyInstance, counter: Counter, exact?: Record<Step, number>): Promise<void> {
  const costs: Record<Step, number[]> = { login: [], load: [], revoke: [] }
  // Once before counting: Redis learns the scripts (a NOSCRIPT answer and the script sent again).
  await app.revokeSessions('warm-up')
  await app.encodeSession({ current_user: { id: 'warm-up' } })
  for (const [user, sessions] of [['solo', 1], ['many', 50_000]] as const) {
    for (let made = 1; made < sessions; made += 250) {
      await Promise.all(Array.from({ length: Math.min(250, sessions - made) }, async () => await app.encodeSession({ current_user: { id: user } })))
    }
    let cookie = ''
    costs.login.push(await opsOf(counter, async () => { cookie = setCookie(await app.inject(`/login/${user}`))?.value as string }))
    costs.load.push(await opsOf(counter, async () => { t.same((await app.inject({ url: '/read', cookies: { session: cookie } })).json(), { user: { id: user } }) }))
    costs.revoke.push(await opsOf(counter, async () => { await app.revokeSessions(user) }))
    t.same((await app.inject({ url: '/read', cookies: { session: cookie } })).json(), { user: null }, `${user}: revoked`)
  }
  for (const [step, [one, many]] of Object.entries(costs) as Array<[Step, number[]]>) {
    t.equal(many, one, `${step}: ${one} store operations at 1 session of the user, the same at 50,000`)
    if (exact === undefined) t.ok((one as number) > 0 && (one as number) <= 6, `${step}: a few (${one})`)
    else t.equal(one, exact[step], `${step}: ${exact[step]}, as the README's cost table says`)
  }
}

t.test('the work of a login, a load and a revoke does not grow with a user\'s sessions: RedisStore, Redis\'s own command count', { skip }, async (t) => {
  const redis = await startRedis(t)
  const client = await connect(t, redis.url)
  const app = await countedApp(t, { store: new RedisStore({ client }) })
  const counter: Counter = {
    reset: async () => { await client.configResetStat() },
    count: async () => {
      const stats = await client.info('commandstats')
      let total = 0
      // Every command Redis ran, the ones inside scripts included; not the counting itself.
      for (const [, name, calls] of stats.matchAll(/cmdstat_([\w|]+):calls=(\d+)/g)) if (!/^(info|config)\b/.test(name as string)) total += Number(calls)
      return total
    }
  }
  await costsAt(t, app, counter)
})

t.test('the work of a login, a load and a revoke does not grow with a user\'s sessions: an express-session store\'s calls', async (t) => {
  const store = new CallbackStore()
  const app = await countedApp(t, { store })
  // login: the revocation record read, the new id read and written, the record read again;
  // load: the session, then the revocation record; revoke: the record read, read and written,
  // read again.
  await costsAt(t, app, { reset: async () => { store.calls = 0 }, count: async () => store.calls }, { login: 4, load: 2, revoke: 4 })
})

/** An express-session store that logs each call: its method, and what it names. */
class CallLog implements ExpressStoreLike {
  readonly calls: string[] = []
  readonly #inner = new CallbackStore()

  #log (method: string, sid: string): void {
    this.calls.push(`${method} ${sid.startsWith('rev.') ? 'revocation record' : sid.startsWith('ended.') ? 'ended marker' : 'session'}`)
  }

  get (sid: string, callback: (error?: unknown, value?: unknown) => void): void { this.#log('get', sid); this.#inner.get(sid, callback) }
  set (sid: string, session: { cookie: { expires: string } }, callback: (error?: unknown) => void): void { this.#log('set', sid); this.#inner.set(sid, session, callback) }
  touch (sid: string, session: { cookie: { expires: string } }, callback: (error?: unknown) => void): void { this.#log('touch', sid); this.#inner.touch(sid, session, callback) }
  destroy (sid: string, callback: (error?: unknown) => void): void { this.#log('destroy', sid); this.#inner.destroy(sid, callback) }
}

t.test('a load through an express-session store is one store call, two with a user (issue 18)', async (t) => {
  const store = new CallLog()
  const { app } = await buildApp({ key: KEY, store }, (app) => {
    app.get('/login/:id', async (request) => { request.session.login({ id: (request.params as { id: string }).id }); return {} })
    app.get('/visit', async (request) => { request.session.set('visits', 1); return {} })
    app.get('/read', async (request) => request.session.data())
  })
  t.teardown(async () => { await app.close() })
  const anonymous = setCookie(await app.inject('/visit'))?.value as string
  const loggedIn = setCookie(await app.inject('/login/ada'))?.value as string
  store.calls.length = 0
  t.same((await app.inject({ url: '/read', cookies: { session: anonymous } })).json(), { visits: 1 })
  t.same(store.calls, ['get session'], 'an anonymous load: its record, nothing else')
  store.calls.length = 0
  t.same((await app.inject({ url: '/read', cookies: { session: loggedIn } })).json(), { current_user: { id: 'ada' } })
  t.same(store.calls, ['get session', 'get revocation record'], 'a logged-in load: its record, then its user\'s revocation record')
})
