// What a newcomer trips on, caught at registration with a message that names the fix: a ttl in
// milliseconds, @fastify/cookie registered after the plugin.
import t from 'tap'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import encryptedSession, { Fernet } from '../index.js'

const KEY = Fernet.generateKey()

async function registrationError (options: Record<string, unknown>): Promise<Error | undefined> {
  const app = Fastify()
  app.register(encryptedSession, { key: KEY, ...options })
  return await app.ready().then(() => undefined, (error: Error) => error)
}

t.test('a ttl past 400 days is refused, naming seconds', async (t) => {
  const habit = await registrationError({ ttl: 86_400_000 })
  t.type(habit, TypeError)
  t.equal(habit?.message, 'fastify-encrypted-session: ttl is in seconds: 86400000 is 1000 days, more than the 400 days (34560000) a browser keeps a cookie; 86400000 milliseconds would be ttl: 86400')
  t.match((await registrationError({ maxTtl: 30 * 86_400_000 }))?.message, /^fastify-encrypted-session: maxTtl is in seconds: 2592000000 is 30000 days.*would be maxTtl: 2592000$/, 'maxTtl too')
  t.match((await registrationError({ ttl: 400 * 86_400 + 1 }))?.message, /ttl is in seconds/, 'one second past 400 days')
  t.equal(await registrationError({ ttl: 400 * 86_400 }), undefined, '400 days are allowed')
  t.equal(await registrationError({ ttl: 3600, maxTtl: 400 * 86_400 }), undefined, 'and as maxTtl')
})

t.test('@fastify/cookie registered after the plugin: our error, naming the fix', async (t) => {
  const { default: fastifyCookie } = await import('@fastify/cookie')
  const late = Fastify()
  late.register(encryptedSession, { key: KEY })
  late.register(fastifyCookie, { secret: 'a cookie secret of the app, long enough' })
  const error = await late.ready().then(() => undefined, (e: Error) => e)
  t.type(error, TypeError)
  t.match(error?.message, /^fastify-encrypted-session: @fastify\/cookie was registered after fastify-encrypted-session.*Register @fastify\/cookie before fastify-encrypted-session/)
  t.notMatch(error?.message, /cookie secret of the app/, 'nothing of the options repeated')

  const nested = Fastify()
  nested.register(encryptedSession, { key: KEY })
  nested.register(async (child) => { await child.register(fastifyCookie) })
  t.match((await nested.ready().then(() => undefined, (e: Error) => e))?.message, /registered after fastify-encrypted-session/, 'in a child context too')

  const before = Fastify()
  before.register(fastifyCookie, { secret: 'a cookie secret of the app, long enough' })
  before.register(encryptedSession, { key: KEY })
  before.get('/', async (request, reply) => {
    request.session.set('n', 1)
    reply.setCookie('mine', 'v', { signed: true })
    return {}
  })
  await before.ready()
  const cookies = (await before.inject('/')).cookies
  t.same(cookies.map((cookie) => cookie.name).sort(), ['mine', 'session'], 'before it, the app\'s own @fastify/cookie serves both')
  t.same(before.unsignCookie(cookies.find((cookie) => cookie.name === 'mine')?.value as string), { valid: true, renew: false, value: 'v' }, 'signed with the app\'s secret')

  const others = Fastify()
  others.register(encryptedSession, { key: KEY })
  others.register(fp(async (app) => { app.decorate('answer', 42) }))
  await others.ready()
  t.equal((others as unknown as { answer: number }).answer, 42, 'every other decorator is added as before')
})
