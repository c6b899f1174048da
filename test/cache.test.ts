// The verified-token cache: a returning cookie skips WebCrypto, but never its ttl, and nothing
// is remembered of a token that failed.
import t, { type Test } from 'tap'
import FakeTimers from '@sinonjs/fake-timers'
import Fastify from 'fastify'
import encryptedSession, { CREATED_KEY, Fernet } from '../index.js'
import { buildApp, setCookie } from './helpers/app.js'

const KEY = Fernet.generateKey()
const T0 = 1_750_000_000

/** Counts WebCrypto MAC checks, the work the cache saves. */
function countVerifies (t: Test): { count: number } {
  const subtle = globalThis.crypto.subtle
  const original = subtle.verify
  const counter = { count: 0 }
  subtle.verify = async function (...args: Parameters<SubtleCrypto['verify']>) {
    counter.count++
    return await original.apply(subtle, args)
  }
  t.teardown(() => { subtle.verify = original })
  return counter
}

const routes = (app: import('fastify').FastifyInstance): void => {
  app.get('/read', async (request) => ({ visits: request.session.get('visits') ?? null }))
  app.get('/write', async (request) => {
    request.session.set('visits', (request.session.get('visits') ?? 0) + 1)
    return {}
  })
}

t.test('the codec cache holds at most cacheSize entries, least recently used out first', async (t) => {
  const { app } = await buildApp({ key: KEY, cacheSize: 3 }, routes)
  const tokens: string[] = []
  for (let i = 0; i < 4; i++) tokens.push(await app.encodeSession({ i }))
  const verifies = countVerifies(t)
  for (const token of [...tokens].reverse()) await app.inject({ url: '/read', cookies: { session: token } })
  t.equal(verifies.count, 1, 'the three issued last are known; the first was pushed out')
  await app.inject({ url: '/read', cookies: { session: tokens[3] as string } })
  t.equal(verifies.count, 2, 'the first, read last, pushed out the least recently used: the fourth')
})

t.test('the codec cache holds at most cacheSize KB', async (t) => {
  const { app } = await buildApp({ key: KEY, cacheSize: 50, maxSessionSize: 12_800 }, routes)
  const tokens: string[] = []
  for (let i = 0; i < 6; i++) tokens.push(await app.encodeSession({ blob: 'x'.repeat(5000), i }))
  const verifies = countVerifies(t)
  for (const token of tokens.reverse()) await app.inject({ url: '/read', cookies: { session: token } })
  t.equal(verifies.count, 4, 'of six 7 KB tokens (about 24 KB each in memory) only the last two issued fit in 50 KB')
})

t.test('a returning token skips the MAC check; the token just issued too', async (t) => {
  const { app } = await buildApp({ key: KEY }, routes)
  const token = setCookie(await app.inject('/write'))?.value as string
  const verifies = countVerifies(t)
  for (let i = 0; i < 5; i++) t.same((await app.inject({ url: '/read', cookies: { session: token } })).json(), { visits: 1 })
  t.equal(verifies.count, 0, 'the token the plugin issued is known without a WebCrypto call')

  const foreign = await new Fernet(KEY).encrypt('{"visits":7}')
  await app.inject({ url: '/read', cookies: { session: foreign } })
  await app.inject({ url: '/read', cookies: { session: foreign } })
  t.equal(verifies.count, 1, 'a token from elsewhere is verified once')
})

t.test('a remembered token that stops opening a session is forgotten', async (t) => {
  const clock = FakeTimers.install({ now: T0 * 1000, toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
  const { app } = await buildApp({ key: KEY, ttl: 1000, absoluteLifetime: 100 }, routes)
  const token = setCookie(await app.inject('/write'))?.value as string
  clock.tick(101_000)
  const verifies = countVerifies(t)
  t.same((await app.inject({ url: '/read', cookies: { session: token } })).json(), { visits: null }, 'past the absolute lifetime')
  t.equal(verifies.count, 0, 'that was answered from the cache')
  await app.inject({ url: '/read', cookies: { session: token } })
  t.equal(verifies.count, 1, 'but the entry is gone: the next time is a full check')
})

t.test('refused tokens are never remembered', async (t) => {
  const { app } = await buildApp({ key: KEY }, routes)
  const forged = await new Fernet(Fernet.generateKey()).encrypt('{"visits":1}')
  const notJson = await new Fernet(KEY).encrypt('not json')
  const verifies = countVerifies(t)
  for (let i = 0; i < 3; i++) {
    t.same((await app.inject({ url: '/read', cookies: { session: forged } })).json(), { visits: null })
    t.same((await app.inject({ url: '/read', cookies: { session: notJson } })).json(), { visits: null })
  }
  t.equal(verifies.count, 6, 'each refused token is checked again every time')
})

t.test('a remembered token still expires, and absolute lifetime still holds', async (t) => {
  const clock = FakeTimers.install({ now: T0 * 1000, toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
  const { app } = await buildApp({ key: KEY, ttl: 100, rolling: false, absoluteLifetime: 150 }, routes)
  const token = setCookie(await app.inject('/write'))?.value as string
  clock.tick(100_000)
  t.same((await app.inject({ url: '/read', cookies: { session: token } })).json(), { visits: 1 }, 'age = ttl: still valid')
  clock.tick(1_000)
  t.same((await app.inject({ url: '/read', cookies: { session: token } })).json(), { visits: null }, 'ttl + 1: expired although remembered')
  t.same((await app.inject({ url: '/read', cookies: { session: token } })).json(), { visits: null }, 'and forgotten')

  const future = await new Fernet(KEY).encryptAtTime(JSON.stringify({ visits: 5, [CREATED_KEY]: T0 }), T0 + 101 + 30)
  t.same((await app.inject({ url: '/read', cookies: { session: future } })).json(), { visits: 5 }, '30 s ahead: within the skew')
  clock.setSystemTime((T0 + 61) * 1000)
  t.same((await app.inject({ url: '/read', cookies: { session: future } })).json(), { visits: null }, 'the clock went back: 70 s ahead is refused on a hit too')
  clock.setSystemTime((T0 + 101) * 1000)
  t.same((await app.inject({ url: '/read', cookies: { session: future } })).json(), { visits: 5 })
  clock.setSystemTime((T0 + 151) * 1000)
  t.same((await app.inject({ url: '/read', cookies: { session: future } })).json(), { visits: null }, 'past the absolute lifetime on a hit')
})

t.test('cacheSize: 0 turns it off; a bad value is refused', async (t) => {
  const { app } = await buildApp({ key: KEY, cacheSize: 0 }, routes)
  const token = setCookie(await app.inject('/write'))?.value as string
  const verifies = countVerifies(t)
  await app.inject({ url: '/read', cookies: { session: token } })
  await app.inject({ url: '/read', cookies: { session: token } })
  t.equal(verifies.count, 2, 'every request verifies')
  for (const cacheSize of [-1, 1.5, '10']) {
    const bad = Fastify()
    bad.register(encryptedSession, { key: KEY, cacheSize: cacheSize as number })
    await t.rejects(async () => { await bad.ready() }, { message: /cacheSize must be a whole number of entries/ })
  }
})

t.test('a hit gives each request its own copy of the data', async (t) => {
  const { app } = await buildApp({ key: KEY }, (app) => {
    app.get('/mutate', async (request) => {
      (request.session.get('list') as number[]).push(1)
      return request.session.get('list')
    })
  })
  const token = await app.encodeSession({ list: [] })
  t.same((await app.inject({ url: '/mutate', cookies: { session: token } })).json(), [1])
  t.same((await app.inject({ url: '/mutate', cookies: { session: token } })).json(), [1], 'the first request changed nothing of the second')
})
