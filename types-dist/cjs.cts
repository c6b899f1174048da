// Type test of the PUBLISHED declarations, through CommonJS resolution (`require`, a .cts file
// under module nodenext): the package's "require" condition, dist/cjs/*.d.ts. Compiled by
// scripts/pack-check.sh in a project that installed the packed tarball, fastify and
// @types/node, with skipLibCheck off. Lines marked @ts-expect-error must fail to compile.
import Fastify = require('fastify')
import session = require('fastify-encrypted-session')
import fernetOnly = require('fastify-encrypted-session/fernet')
import type { FastifyReply, FastifyRequest } from 'fastify'

declare module 'fastify-encrypted-session' {
  interface SessionData {
    visits: number
    current_user: { id: number, name: string }
  }
}

function expectType<T> (value: T): T { return value }

async function main (): Promise<void> {
  const app = Fastify.default()
  await app.register(session.default, { key: session.Fernet.generateKey(), ttl: 3600 })
  await app.register(session.encryptedSession, { key: session.Fernet.generateKey(), sessionName: 'admin', cookieName: 'admin' })
  // @ts-expect-error unknown options are refused by the types too
  await app.register(session.default, { key: session.Fernet.generateKey(), tll: 3600 })

  app.get('/', async (request) => {
    const visits = (request.session.get('visits') ?? 0) + 1
    expectType<number | undefined>(request.session.get('visits'))
    request.session.set('visits', visits)
    // @ts-expect-error SessionData, augmented above, says a number
    request.session.set('visits', 'many')
    return { visits }
  })

  app.get('/account', {
    preHandler: app.requireLogin,
    config: {
      onLoginRequired: async (request, reply) => {
        const r: FastifyReply = reply
        const q: FastifyRequest = request
        // @ts-expect-error would compile if reply were `any`
        reply.notAMethod()
        return await r.redirect(`/login?next=${q.url}`)
      }
    }
  }, async (request) => request.session.user)

  const token: string = await app.encodeSession({ visits: 1 })
  const decoded: session.Session = await app.decodeSession(token)
  expectType<number | undefined>(decoded.get('visits'))

  const fernet = new session.Fernet(session.Fernet.generateKey())
  const sealed = await fernet.encrypt('x')
  expectType<Uint8Array>(await new session.MultiFernet([fernet]).decrypt(sealed))
  expectType<typeof session.Fernet>(fernetOnly.Fernet)
  expectType<string>(await new fernetOnly.MultiFernet([fernetOnly.Fernet.generateKey()]).rotate(sealed).catch(() => ''))
  // @ts-expect-error a key is text or bytes
  new fernetOnly.Fernet(42) // eslint-disable-line no-new
}
void main
