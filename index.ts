// The Fastify plugin: wires the session codec into onRequest and onSend. Session logic lives
// in lib/session.ts, the token format in lib/session-codec.ts and lib/fernet.ts.
import fastifyCookie from '@fastify/cookie'
import type { CookieSerializeOptions } from '@fastify/cookie'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { CREATED_KEY, type EncryptedSessionOptions, resolveOptions } from './lib/options.js'
import { SessionCodec } from './lib/session-codec.js'
import { Session, type SaveContext, type SessionRecord, kDecide } from './lib/session.js'

export { DEFAULT_MAX_TOKEN_LENGTH, Fernet, FernetBase, InvalidToken, MAX_CLOCK_SKEW, MultiFernet, deriveKey } from './lib/fernet.js'
export type { DecryptOptions, DecryptedToken, DeriveKeyOptions, FernetOptions, InvalidTokenReason } from './lib/fernet.js'
export { CREATED_KEY, DEFAULT_TTL } from './lib/options.js'
export type { EncryptedSessionOptions, KeyMaterial, SessionCookieOptions } from './lib/options.js'
export type { SessionFailure } from './lib/session-codec.js'
export { Session }

/**
 * The shape of session data. Augment it to type `session.get()` and `session.set()`:
 *
 *     declare module 'fastify-encrypted-session' {
 *       interface SessionData { visits: number, user?: { name: string } }
 *     }
 */
export interface SessionData {
  [key: string]: any
}

declare module 'fastify' {
  interface FastifyRequest {
    session: Session<SessionData>
  }
  interface FastifyInstance {
    /** A session's cookie value, for use outside a request (tests, websockets). */
    encodeSession: (data: Partial<SessionData> | Session<SessionData>, sessionName?: string) => Promise<string>
    /** The session a cookie value holds; a new empty session when it holds none. */
    decodeSession: (token: string, sessionName?: string) => Promise<Session<SessionData>>
  }
}

const kCodecs = Symbol('fastify-encrypted-session.codecs')

type CodecRegistry = Map<string, SessionCodec>
type SessionRequest = FastifyRequest & Record<string, Session | null>

function nowSeconds (): number {
  return Math.floor(Date.now() / 1000)
}

// Fernet tokens hold only [A-Za-z0-9_=-]: written as they are, without percent-encoding,
// so that Werkzeug and other Python stacks read the cookie unchanged.
const writeRaw = (value: string): string => value

function codecFor (fastify: FastifyInstance, sessionName: string | undefined): SessionCodec {
  const registry = (fastify as unknown as Record<symbol, CodecRegistry>)[kCodecs] as CodecRegistry
  const codec = registry.get(sessionName ?? 'session')
  if (codec === undefined) throw new TypeError(`fastify-encrypted-session: no session named "${String(sessionName)}" is registered`)
  return codec
}

const plugin: FastifyPluginAsync<EncryptedSessionOptions> = async (fastify, options) => {
  const config = await resolveOptions(options)
  const { sessionName, cookieName } = config
  if (!fastify.hasPlugin('@fastify/cookie')) await fastify.register(fastifyCookie)

  const codec = new SessionCodec({ keys: config.keys, ttl: config.ttl, absoluteLifetime: config.absoluteLifetime, createdKey: CREATED_KEY })
  if (!fastify.hasDecorator(kCodecs as unknown as string)) {
    fastify.decorate(kCodecs as unknown as string, new Map())
    fastify.decorate('encodeSession', async function (this: FastifyInstance, data, name) {
      const json = JSON.stringify(data instanceof Session ? data.data() : data)
      return await codecFor(this, name).seal(json, nowSeconds())
    })
    fastify.decorate('decodeSession', async function (this: FastifyInstance, token, name) {
      const session = await codecFor(this, name).open(token, nowSeconds())
      return (typeof session === 'string' ? new Session() : session) as Session<SessionData>
    })
  }
  const registry = (fastify as unknown as Record<symbol, CodecRegistry>)[kCodecs] as CodecRegistry
  registry.set(sessionName, codec)

  const cookieAttributes: CookieSerializeOptions = { ...config.cookie, maxAge: config.ttl, encode: writeRaw }
  const clearAttributes: CookieSerializeOptions = { ...config.cookie, encode: writeRaw }
  const saveContext = (now: number): SaveContext => ({
    now,
    rollingAfter: config.rollingAfter,
    createdKey: config.absoluteLifetime === undefined ? undefined : CREATED_KEY
  })

  fastify.decorateRequest(sessionName, null)

  fastify.addHook('onRequest', async (request: FastifyRequest) => {
    const token = request.cookies[cookieName]
    let session: Session
    if (token === undefined) {
      session = new Session()
    } else {
      const opened = await codec.open(token, nowSeconds())
      if (typeof opened === 'string') {
        request.log.debug({ sessionName, reason: opened }, 'fastify-encrypted-session: session cookie ignored')
        session = new Session(undefined, undefined, true)
      } else {
        session = opened
      }
    }
    (request as SessionRequest)[sessionName] = session
  })

  fastify.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const session = (request as SessionRequest)[sessionName]
    // Absent when onRequest did not finish, e.g. the request was aborted.
    if (session == null) return payload
    const now = nowSeconds()
    let decision
    try {
      decision = session[kDecide](saveContext(now))
    } catch (error) {
      // A value changed in place after set() so that JSON can no longer hold it (a cycle, a
      // BigInt): the reply stands, the session is not saved.
      request.log.error({ sessionName, err: error }, 'fastify-encrypted-session: session not saved, its data cannot be serialised')
      return payload
    }
    if (decision.action === 'save') {
      reply.setCookie(cookieName, await codec.seal(decision.json, now), cookieAttributes)
    } else if (decision.action === 'clear') {
      reply.clearCookie(cookieName, clearAttributes)
    }
    return payload
  })
}

/** Encrypted cookie sessions; see README.md for every option. */
export const encryptedSession = fp(plugin, {
  fastify: '5.x',
  name: 'fastify-encrypted-session'
})

export default encryptedSession
export type { SessionRecord }
