// What a newcomer trips on, caught at registration with a message that names the fix: a ttl in
// milliseconds, @fastify/cookie registered after the plugin.
import t from 'tap'
import Fastify from 'fastify'
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
