// Type test of the PUBLISHED declarations, through ESM resolution (`import`, module nodenext):
// scripts/pack-check.sh copies this file into an empty project that installed the packed
// tarball, fastify and @types/node, and compiles it with skipLibCheck off, so every .d.ts we
// ship is checked as a user's compiler checks it. The tests in types/ cannot see this: they map
// the package to the sources. Lines marked @ts-expect-error must fail to compile.
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import encryptedSession, {
  type EncryptedSessionOptions,
  type LoginRequiredHandler,
  Fernet,
  InvalidToken,
  MultiFernet,
  Session,
  deriveKey,
  encryptedSession as named
} from 'fastify-encrypted-session'
import { Fernet as SubpathFernet, MultiFernet as SubpathMultiFernet } from 'fastify-encrypted-session/fernet'
import { MemoryStore } from 'fastify-encrypted-session'
import { RedisStore } from 'fastify-encrypted-session/redis'

declare module 'fastify-encrypted-session' {
  interface SessionData {
    visits: number
    current_user: { id: number, name: string }
  }
}

function expectType<T> (value: T): T { return value }

const app = Fastify()
const options: EncryptedSessionOptions = { key: [Fernet.generateKey(), Fernet.generateKey()], ttl: 3600, rolling: 600, cookie: { secure: 'auto', sameSite: 'strict' } }
await app.register(encryptedSession, options)
await app.register(named, { secret: 'passphrase', salt: 'sixteen bytes salt', iterations: 100_000, sessionName: 'admin', cookieName: 'admin' })
// @ts-expect-error ttl is a number of seconds
await app.register(encryptedSession, { key: Fernet.generateKey(), ttl: '1h' })

app.get('/', async (request) => {
  const visits = (request.session.get('visits') ?? 0) + 1
  expectType<number | undefined>(request.session.get('visits'))
  request.session.set('visits', visits)
  // @ts-expect-error SessionData, augmented above through the published types, says a number
  request.session.set('visits', 'many')
  request.session.login({ id: 1, name: 'ada' })
  expectType<{ id: number, name: string } | undefined>(request.session.user)
  request.session.flash('info', 'Saved')
  expectType<Array<{ category: string, message: string }>>(request.session.flashes())
  return { visits }
})

const onLoginRequired: LoginRequiredHandler = async (request, reply) => {
  // A FastifyReply and a FastifyRequest, not `any`: the declarations name both types.
  const r: FastifyReply = reply
  const q: FastifyRequest = request
  // @ts-expect-error would compile if reply were `any` (an unresolved type in a .d.ts is `any`)
  reply.notAMethod()
  // @ts-expect-error the same for request
  request.notAProperty.deeper()
  return await r.redirect(`/login?next=${q.url}`)
}
app.get('/account', {
  preHandler: app.requireLogin,
  config: {
    onLoginRequired: async (request, reply) => {
      const r: FastifyReply = reply
      // @ts-expect-error reply is a FastifyReply here too, inferred from the route config
      reply.notAMethod()
      return await r.code(401).send({ login: '/login', url: request.url })
    }
  }
}, async (request) => request.session.user)
app.get('/other', { preHandler: app.requireLogin, config: { onLoginRequired } }, async () => 'ok')
// @ts-expect-error onLoginRequired is a function
app.get('/wrong', { preHandler: app.requireLogin, config: { onLoginRequired: '/login' } }, async () => 'ok')

const token: string = await app.encodeSession({ visits: 1 })
// @ts-expect-error encodeSession takes session data
await app.encodeSession('not data')
const decoded: Session = await app.decodeSession(token)
expectType<number | undefined>(decoded.get('visits'))

// @fastify/session's members, through the published declarations.
app.get('/logout', (request, reply) => {
  expectType<string>(request.session.sessionId)
  expectType<Date | null>(request.session.cookie.expires)
  expectType<Promise<void>>(request.session.save())
  void request.session.destroy((error) => { if (error !== null) reply.send(error); else reply.redirect('/') })
})
app.decryptSession(token, {} as FastifyRequest, (error) => { expectType<Error | null>(error) })
// @ts-expect-error browserSession is true or false
await app.register(encryptedSession, { key: Fernet.generateKey(), browserSession: 1 })
expectType<boolean>((await app.decodeSession({ admin: token }, 'admin')).isNew)

const key: string = Fernet.generateKey()
const fernet = new Fernet(key)
const sealed: string = await fernet.encrypt('secret message')
expectType<Uint8Array>(await fernet.decrypt(sealed, { ttl: 60 }))
expectType<number>(await fernet.extractTimestamp(sealed))
const multi = new MultiFernet([new Fernet(Fernet.generateKey()), key])
expectType<string>(await multi.rotate(sealed))
expectType<number>((await multi.decryptDetailed(sealed)).keyIndex)
expectType<string>(await deriveKey('passphrase', 'sixteen bytes salt', { iterations: 1000 }))
expectType<Error>(new InvalidToken())
// @ts-expect-error a key is text or bytes
new Fernet(42) // eslint-disable-line no-new

// The subpath that loads nothing of Fastify gives the same classes.
expectType<typeof Fernet>(SubpathFernet)
expectType<typeof MultiFernet>(SubpathMultiFernet)
expectType<Uint8Array>(await new SubpathMultiFernet([SubpathFernet.generateKey()]).decrypt(sealed).catch(() => new Uint8Array()))

// Store mode from the published declarations: MemoryStore from the root, RedisStore from its
// subpath, revokeSessions on the instance.
const storeApp = Fastify()
await storeApp.register(encryptedSession, { key: Fernet.generateKey(), store: new MemoryStore(), storeTimeout: 500 })
await storeApp.register(encryptedSession, { key: Fernet.generateKey(), sessionName: 'other', store: new RedisStore({ client: { sendCommand: async (args: string[]) => args } }) })
expectType<void>(await storeApp.revokeSessions('ada', { except: undefined }))
// @ts-expect-error RedisStore needs a client
void new RedisStore({})
