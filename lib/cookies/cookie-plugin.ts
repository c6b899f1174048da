// @fastify/cookie for the plugin's hooks: the app's own when it registered one first, else
// registered here (with secrets derived from the session key, for signed cookies). Registered
// here, it is the app's: a second @fastify/cookie registered after the plugin would collide with
// Fastify's "decorator already present", which names neither plugin nor the fix. That
// registration fails instead with an error that says what to do.
import fastifyCookie from '@fastify/cookie'
import type { FastifyInstance } from 'fastify'

const PREFIX = 'fastify-encrypted-session:'
// The first decorator @fastify/cookie adds: a registration of it meets this name first.
const FIRST_DECORATOR = 'serializeCookie'

/** Registers @fastify/cookie on the app unless it has one. */
export async function ensureCookiePlugin (fastify: FastifyInstance, secrets: string[]): Promise<void> {
  if (fastify.hasPlugin('@fastify/cookie')) return
  await fastify.register(fastifyCookie, { secret: secrets })
  const instance = fastify as unknown as Record<PropertyKey, unknown>
  const decorate = fastify.decorate
  // Own property of this instance: contexts the app creates later inherit it.
  instance.decorate = function (this: FastifyInstance, name: string, ...rest: unknown[]) {
    if (name === FIRST_DECORATOR && this.hasDecorator(FIRST_DECORATOR)) {
      throw new TypeError(`${PREFIX} @fastify/cookie was registered after fastify-encrypted-session, which had registered it already (it does when the app has none). Register @fastify/cookie before fastify-encrypted-session, with your options; the plugin then uses yours.`)
    }
    return (decorate as (...args: unknown[]) => unknown).call(this, name, ...rest)
  }
}
