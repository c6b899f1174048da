// The Fastify plugin: wires the session codec into onRequest and onSend. Session logic lives
// in lib/session.ts, the token format in lib/session-codec.ts and lib/fernet.ts.
import fastifyCookie from '@fastify/cookie'
import type { CookieSerializeOptions } from '@fastify/cookie'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { CREATED_KEY, type EncryptedSessionOptions, resolveOptions } from './lib/options.js'
import { type CookieJar, type IncomingCookies, MAX_COOKIE_BYTES, NO_COOKIES, chunkName, cookieNamesClash, readSessionCookies, splitToken } from './lib/cookie-chunks.js'
import { nowSeconds, tokenTextLength } from './lib/fernet.js'
import { SessionCodec, type SessionFailure } from './lib/session-codec.js'
import { FLASHES_KEY, Session, type SaveRules, type SessionData, type SessionRecord, kDecide } from './lib/session.js'

export { DEFAULT_MAX_TOKEN_LENGTH, Fernet, FernetBase, InvalidToken, MAX_CLOCK_SKEW, MultiFernet, deriveKey } from './lib/fernet.js'
export type { DecryptOptions, DecryptedToken, DeriveKeyOptions, FernetOptions, InvalidTokenReason } from './lib/fernet.js'
export { CREATED_KEY, DEFAULT_CACHE_SIZE, DEFAULT_MAX_SESSION_SIZE, DEFAULT_TTL } from './lib/options.js'
export type { EncryptedSessionOptions, KeyMaterial, SessionCookieOptions } from './lib/options.js'
export type { SessionFailure }
export { FLASHES_KEY, Session }
export type { FlashMessage, SessionData, SessionSettings, SessionUser } from './lib/session.js'
export type { CookieJar }

/** What a route's config.onLoginRequired does instead of the 401 of requireLogin. */
export type LoginRequiredHandler = (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) => unknown

// The augmentation names only exported aliases and fastify's own interfaces: TypeScript drops an
// import used nowhere but inside `declare module`, and the emitted .d.ts then fails to compile.
declare module 'fastify' {
  interface FastifyRequest {
    session: Session<SessionData>
  }
  interface FastifyInstance {
    /** A session's token, for use outside a request (tests, websockets). */
    encodeSession: (data: Partial<SessionData> | Session<SessionData>, sessionName?: string) => Promise<string>
    /**
     * The session a token, or a request's parsed cookies (chunks joined), holds; a new empty
     * session when it holds none.
     */
    decodeSession: (tokenOrCookies: string | CookieJar | null | undefined, sessionName?: string) => Promise<Session<SessionData>>
    /** preHandler: 401 (or the route's config.onLoginRequired) when the session has no user. */
    requireLogin: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>
  }
  interface FastifyContextConfig {
    /** With requireLogin: what to do instead of a 401 when nobody is logged in. */
    onLoginRequired?: LoginRequiredHandler
  }
}

const kCodecs = Symbol('fastify-encrypted-session.codecs')

/** What encodeSession/decodeSession need of each registration. */
interface RegisteredSession {
  codec: SessionCodec
  cookieName: string
  /** How many chunk cookies a session under maxSessionSize can take. */
  maxChunks: number
}
type CodecRegistry = Map<string, RegisteredSession>
type SessionRequest = FastifyRequest & Record<string, Session | null>

// Fernet tokens hold only [A-Za-z0-9_=-]: written as they are, without percent-encoding,
// so that Werkzeug and other Python stacks read the cookie unchanged.
const writeRaw = (value: string): string => value

function registered (fastify: FastifyInstance, sessionName: string | undefined): RegisteredSession {
  const registry = (fastify as unknown as Record<symbol, CodecRegistry>)[kCodecs] as CodecRegistry
  const entry = registry.get(sessionName ?? 'session')
  if (entry === undefined) throw new TypeError(`fastify-encrypted-session: no session named "${String(sessionName)}" is registered`)
  return entry
}

const plugin: FastifyPluginAsync<EncryptedSessionOptions> = async (fastify, options) => {
  const config = await resolveOptions(options)
  const { sessionName, cookieName, maxSessionSize } = config
  if (!fastify.hasPlugin('@fastify/cookie')) await fastify.register(fastifyCookie)

  const codec = new SessionCodec({
    keys: config.keys,
    ttl: config.ttl,
    absoluteLifetime: config.absoluteLifetime,
    createdKey: CREATED_KEY,
    settings: config.settings,
    cacheSize: config.cacheSize
  })
  if (!fastify.hasDecorator(kCodecs as unknown as string)) {
    fastify.decorate(kCodecs as unknown as string, new Map())
    fastify.decorate('encodeSession', async function (this: FastifyInstance, data, name) {
      const json = JSON.stringify(data instanceof Session ? data.data() : data)
      return await registered(this, name).codec.seal(json, nowSeconds())
    })
    fastify.decorate('decodeSession', async function (this: FastifyInstance, cookies, name) {
      const { codec, cookieName, maxChunks } = registered(this, name)
      // Anything but a token or a cookie map (say request.cookies.session when there is none)
      // holds no session.
      const token = typeof cookies === 'string'
        ? cookies
        : readSessionCookies(typeof cookies === 'object' ? cookies : undefined, cookieName, maxChunks).token
      const session = token === undefined ? codec.fresh() : await codec.open(token, nowSeconds())
      return typeof session === 'string' ? codec.fresh() : session
    })
    // The first registration (normally the default "session") guards routes.
    fastify.decorate('requireLogin', async function requireLogin (request: FastifyRequest, reply: FastifyReply) {
      if ((request as SessionRequest)[sessionName]?.user !== undefined) return
      const onLoginRequired = request.routeOptions.config.onLoginRequired
      if (onLoginRequired !== undefined) return await onLoginRequired.call(fastify, request, reply)
      return await reply.code(401).send({ statusCode: 401, error: 'Unauthorized', message: 'Login required' })
    })
  }
  const registry = (fastify as unknown as Record<symbol, CodecRegistry>)[kCodecs] as CodecRegistry
  if (registry.has(sessionName)) throw new TypeError(`fastify-encrypted-session: a session named "${sessionName}" is already registered; give the second one another sessionName`)
  for (const [otherName, other] of registry) {
    if (cookieNamesClash(other.cookieName, cookieName)) {
      throw new TypeError(`fastify-encrypted-session: cookieName "${cookieName}" would share cookies with session "${otherName}" (cookie "${other.cookieName}" and its chunks "${other.cookieName}.0", ...); choose another cookieName`)
    }
  }

  const cookieAttributes: CookieSerializeOptions = { ...config.cookie, maxAge: config.ttl, encode: writeRaw }
  const clearAttributes: CookieSerializeOptions = { ...config.cookie, encode: writeRaw }
  // Bytes that the name and attributes take in one Set-Cookie; Secure counted even when it
  // may be left out ('auto'), so a cookie always fits.
  const overhead = (name: string): number => fastify.serializeCookie(name, '', { ...cookieAttributes, secure: true }).length
  const plainRoom = MAX_COOKIE_BYTES - overhead(cookieName)
  // Room in each chunk, for a chunk name with as many digits as any index can have.
  const chunkRoom = MAX_COOKIE_BYTES - overhead(chunkName(cookieName, maxSessionSize))
  if (chunkRoom < 1024) {
    throw new TypeError('fastify-encrypted-session: the cookie name and attributes leave less than 1,024 of a cookie\'s 4,096 bytes for the session; shorten them')
  }
  const maxChunks = Math.ceil(maxSessionSize / chunkRoom)
  registry.set(sessionName, { codec, cookieName, maxChunks })

  const saveRules: SaveRules = {
    rollingAfter: config.rollingAfter,
    createdKey: config.absoluteLifetime === undefined ? undefined : CREATED_KEY
  }

  // What each request brought of the cookies, to clear what a smaller session leaves behind.
  const incoming = new WeakMap<Session, IncomingCookies>()

  fastify.decorateRequest(sessionName, null)

  function settle (request: FastifyRequest, cookies: IncomingCookies, opened: Session | SessionFailure): void {
    let session: Session
    if (typeof opened === 'string') {
      request.log.debug({ sessionName, reason: opened }, 'fastify-encrypted-session: session cookie ignored')
      session = codec.fresh(true)
    } else {
      session = opened
    }
    incoming.set(session, cookies)
    ;(request as SessionRequest)[sessionName] = session
  }

  // Callback-style hooks: a request without a cookie, or with one the cache knows, is handled
  // without a single promise; only real WebCrypto work goes async.
  fastify.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void) => {
    // request.cookies is filled by @fastify/cookie's own onRequest hook, unless the app set
    // that plugin's `hook` option to a later stage or off: then parse the header here.
    const cookies = readSessionCookies(request.cookies ?? fastify.parseCookie(request.headers.cookie ?? ''), cookieName, maxChunks)
    if (cookies.token === undefined) {
      (request as SessionRequest)[sessionName] = codec.fresh()
      done()
      return
    }
    const now = nowSeconds()
    const known = codec.lookup(cookies.token, now)
    if (known !== undefined) {
      settle(request, cookies, known)
      done()
      return
    }
    // open() never rejects: every bad token is a reason, not an error.
    void codec.open(cookies.token, now).then((opened) => {
      settle(request, cookies, opened)
      done()
    })
  })

  fastify.addHook('onSend', (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (error: Error | null, payload?: unknown) => void) => {
    const session = (request as SessionRequest)[sessionName]
    // Absent when onRequest did not run, e.g. an earlier hook already replied.
    if (session == null) {
      done(null, payload)
      return
    }
    const now = nowSeconds()
    let decision
    try {
      decision = session[kDecide](now, saveRules)
    } catch (error) {
      // A value changed in place after set() so that JSON can no longer hold it (a cycle, a
      // BigInt, a __proto__ key): the reply stands, the session is not saved.
      request.log.error({ sessionName, err: error }, 'fastify-encrypted-session: session not saved, its data cannot be serialised')
      done(null, payload)
      return
    }
    const came = incoming.get(session) ?? NO_COOKIES
    if (decision.action === 'keep') {
      done(null, payload)
    } else if (decision.action === 'clear') {
      writeCookies(reply, [], came)
      done(null, payload)
    } else {
      const size = tokenTextLength(Buffer.byteLength(decision.json))
      if (size > maxSessionSize) {
        request.log.error({ sessionName, size, maxSessionSize }, 'fastify-encrypted-session: session not saved, it is larger than maxSessionSize')
        done(null, payload)
        return
      }
      codec.seal(decision.json, now).then((token) => {
        writeCookies(reply, token.length <= plainRoom ? [token] : splitToken(token, chunkRoom), came)
        done(null, payload)
      }, (error: Error) => { done(error) })
    }
  })

  /** Sets the token's pieces (none: clear the session) and clears what the request brought beyond them. */
  function writeCookies (reply: FastifyReply, pieces: string[], came: IncomingCookies): void {
    if (pieces.length === 1) {
      reply.setCookie(cookieName, pieces[0] as string, cookieAttributes)
    } else {
      pieces.forEach((piece, index) => reply.setCookie(chunkName(cookieName, index), piece, cookieAttributes))
      if (came.hasPlain || pieces.length === 0) reply.clearCookie(cookieName, clearAttributes)
    }
    // Chunks the new token does not overwrite: all of them when it is one plain cookie.
    const firstStale = pieces.length === 1 ? 0 : pieces.length
    for (const index of came.chunks) {
      if (index >= firstStale) reply.clearCookie(chunkName(cookieName, index), clearAttributes)
    }
  }
}

/** Encrypted cookie sessions; see README.md for every option. */
export const encryptedSession = fp(plugin, {
  fastify: '5.x',
  name: 'fastify-encrypted-session'
})

export default encryptedSession
export type { SessionRecord }
