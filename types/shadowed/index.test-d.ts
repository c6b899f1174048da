// Type tests of a SessionData that declares a key a Session member shadows, in a program of
// their own (an augmentation holds for a whole program). Compiled by `npm run typecheck`; each
// line marked @ts-expect-error fails the build if it ever compiles.
import Fastify from 'fastify'
import encryptedSession, { Fernet, type ShadowedKeys, type SessionData } from 'fastify-encrypted-session'

declare module 'fastify-encrypted-session' {
  interface SessionData {
    visits: number
    // The README's old example: session.user is the logged-in user, never this key.
    user: { id: number, name: string }
  }
}

function expectType<T> (value: T): T { return value }

const shadowed: ShadowedKeys<SessionData> = 'user'
expectType<'user'>(shadowed)
// @ts-expect-error visits is not shadowed
const notShadowed: ShadowedKeys<SessionData> = 'visits'

const app = Fastify()
app.register(encryptedSession, { key: Fernet.generateKey() })
app.get('/', async (request) => {
  // @ts-expect-error request.session is an error that names the shadowed key: rename it
  request.session.get('visits')
  // @ts-expect-error and what compiled and was undefined at run time no longer compiles
  return request.session.user.name
})
export { notShadowed }
