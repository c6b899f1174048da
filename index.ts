// The Fastify plugin: wires a session backend into onRequest and onSend. Session logic lives in
// lib/session.ts, the backends in lib/backends/, the cookie layout in lib/cookies/ and the token
// format in lib/fernet/; the stores in lib/stores/.
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { type SessionBackend, type SessionFailure, SessionTooLarge } from './lib/backends/backend.js'
import { CookieBackend } from './lib/backends/cookie.js'
import { type CookieJar, cookieNamesClash } from './lib/cookies/cookie-chunks.js'
import { ensureCookiePlugin } from './lib/cookies/cookie-plugin.js'
import { nowSeconds } from './lib/fernet/fernet.js'
import { CREATED_KEY, type EncryptedSessionOptions, type ResolvedOptions, type RevokeOptions, resolveOptions, revokeOptions } from './lib/options.js'
import { SessionCookies } from './lib/cookies/session-cookies.js'
import { StoreBackend } from './lib/backends/store.js'
import { BackendLink, decryptInto, sessionOfToken } from './lib/backends/link.js'
import { FLASHES_KEY, SESSION_ID_KEY, Session, type SaveRules, type SessionData, type SessionRecord, type ShadowedKeys, TTL_KEY, kCookieAttributes, kDecide, kPending } from './lib/session.js'

export { DEFAULT_MAX_TOKEN_LENGTH, Fernet, FernetBase, InvalidToken, MAX_CLOCK_SKEW, MultiFernet, deriveKey } from './lib/fernet/fernet.js'
export type { DecryptOptions, DecryptedToken, DeriveKeyOptions, FernetOptions, InvalidTokenReason } from './lib/fernet/fernet.js'
export { CREATED_KEY, DEFAULT_CACHE_SIZE, DEFAULT_MAX_SESSION_SIZE, DEFAULT_STORE_TIMEOUT, DEFAULT_TTL } from './lib/options.js'
export type { EncryptedSessionOptions, KeyMaterial, RevokeOptions, SessionCookieOptions } from './lib/options.js'
export type { SessionFailure }
export { FLASHES_KEY, SESSION_ID_KEY, Session, TTL_KEY }
export type { CookieOverrides, FlashMessage, SessionCallback, SessionCookie, SessionData, SessionProperties, SessionSettings, SessionUser, ShadowedKeys } from './lib/session.js'
export type { CookieJar }
export { MemoryStore } from './lib/stores/memory.js'
export type { MemoryStoreOptions } from './lib/stores/memory.js'
export type { ExpressSessionLike, MemoryExpressStore, MemoryExpressStoreOptions } from './lib/stores/memory-express.js'
export { SessionNotStoredError, SessionStoreError } from './lib/backends/store.js'
export type { ExpressStoreLike, PutResult, SessionStore, StoredSession } from './lib/stores/store.js'

/** What a route's config.onLoginRequired does instead of the 401 of requireLogin. */
export type LoginRequiredHandler = (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) => unknown

/** request.session, with SessionData's keys as properties; a key a Session member shadows is a type error naming it. */
export type RequestSession = [ShadowedKeys<SessionData>] extends [never]
  ? Session<SessionData> & import('./lib/session.js').SessionProperties<SessionData>
  : { 'fastify-encrypted-session: SessionData declares keys that Session members shadow (session.user is the logged-in user, typed by current_user); rename them': ShadowedKeys<SessionData> }

// The augmentation names only exported aliases and fastify's own interfaces: TypeScript drops an
// import used nowhere but inside `declare module`, and the emitted .d.ts then fails to compile.
declare module 'fastify' {
  interface FastifyRequest {
    session: RequestSession
    /** The store option as given (null without one), as @fastify/session's request.sessionStore. */
    sessionStore: EncryptedSessionOptions['store'] | null
  }
  interface FastifyInstance {
    /** A session's token, for use outside a request (tests, websockets). */
    encodeSession: (data: Partial<SessionData> | Session<SessionData>, sessionName?: string) => Promise<string>
    /** The session a token, or a request's parsed cookies (chunks joined), holds; else a new empty one. */
    decodeSession: (tokenOrCookies: string | CookieJar | null | undefined, sessionName?: string) => Promise<Session<SessionData>>
    /** preHandler: 401 (or the route's config.onLoginRequired) when the session has no user. */
    requireLogin: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>
    /** Ends every session of the user (as the userId option finds it) made before the call, but `except`; a string is the sessionName. */
    revokeSessions: (userId: string | number, options?: string | RevokeOptions) => Promise<void>
    /** @fastify/session's: request.session from a cookie's token (websockets, custom auth); the callback gets a store's failure. */
    decryptSession: ((token: string, request: FastifyRequest, callback: (error: Error | null) => void) => void) & ((token: string, request: FastifyRequest, cookieOptions: Record<string, unknown>, callback: (error: Error | null) => void) => void)
  }
  interface FastifyContextConfig {
    /** With requireLogin: what to do instead of a 401 when nobody is logged in. */
    onLoginRequired?: LoginRequiredHandler
    /** false: this route neither reads nor saves sessions (request.session stays null). */
    session?: boolean
  }
}

const kRegistry = Symbol('fastify-encrypted-session.registry')
/** Requests whose reply has reached onSend: a reply is on its way. */
const replying = new WeakSet<FastifyRequest>()

/** What encodeSession/decodeSession need of each registration. */
interface Registration {
  backend: SessionBackend
  cookies: SessionCookies
}
type Registry = Map<string, Registration>
type SessionRequest = FastifyRequest & Record<string, Session | null>

function registryOf (fastify: FastifyInstance): Registry {
  return (fastify as unknown as Record<symbol, Registry>)[kRegistry] as Registry
}

function registered (fastify: FastifyInstance, sessionName: string | undefined): Registration {
  const entry = registryOf(fastify).get(sessionName ?? 'session')
  if (entry === undefined) throw new TypeError(`fastify-encrypted-session: no session named "${String(sessionName)}" is registered`)
  return entry
}

/** The decorators every registration shares; the first registration adds them. */
function decorateOnce (fastify: FastifyInstance, firstSessionName: string, store: EncryptedSessionOptions['store']): void {
  if (fastify.hasDecorator(kRegistry as unknown as string)) return
  fastify.decorate(kRegistry as unknown as string, new Map())
  fastify.decorate('encodeSession', async function (this: FastifyInstance, data, name) {
    const record = (data instanceof Session ? data.data() : data) as SessionRecord
    return await registered(this, name).backend.encode(record, nowSeconds())
  })
  fastify.decorate('revokeSessions', async function (this: FastifyInstance, userId: string | number, options?: string | RevokeOptions) {
    const { sessionName, except } = revokeOptions(userId, options)
    await registered(this, sessionName).backend.revoke(userId, except)
  })
  fastify.decorate('decodeSession', async function (this: FastifyInstance, cookies, name) {
    const { backend, cookies: layout } = registered(this, name)
    // Anything but a token or a cookie map (say request.cookies.session when there is none)
    // holds no session.
    return await sessionOfToken(backend, typeof cookies === 'string' ? cookies : layout.read(typeof cookies === 'object' ? cookies : undefined))
  })
  fastify.decorate('decryptSession', function (this: FastifyInstance, token: unknown, request: FastifyRequest, ...rest: unknown[]) {
    decryptInto(registered(this, firstSessionName).backend, token, rest, (session) => { (request as SessionRequest)[firstSessionName] = session })
  } as FastifyInstance['decryptSession'])
  fastify.decorateRequest('sessionStore', { getter: () => store ?? null })
  // A hook that sent a reply without returning it (passport's authenticate redirects from
  // preValidation so) lets Fastify go on while onSend still seals the session: the handler
  // would run and reply a second time. Fastify checks reply.sent before each preHandler and the
  // handler; returning the reply, a thenable that settles once it is sent, makes it wait.
  fastify.addHook('preHandler', (request, reply, done) => {
    if (!replying.has(request)) {
      done()
      return
    }
    return reply
  })
  // The first registration (normally the default "session") guards routes.
  fastify.decorate('requireLogin', async function requireLogin (request: FastifyRequest, reply: FastifyReply) {
    if ((request as SessionRequest)[firstSessionName]?.user !== undefined) return
    const onLoginRequired = request.routeOptions.config.onLoginRequired
    if (onLoginRequired !== undefined && await answered(reply, async () => await onLoginRequired.call(fastify, request, reply))) {
      // The reply is a thenable that settles once it is sent: returning it keeps Fastify from
      // running the protected handler while the reply is still on its way.
      return reply
    }
    return reply.code(401).send({ statusCode: 401, error: 'Unauthorized', message: 'Login required' })
  })
}

/**
 * Whether `respond` sent (or began to send) a reply. A reply that is still in its onSend hooks
 * is not yet `sent`, so every call of send() is watched while it runs.
 */
async function answered (reply: FastifyReply, respond: () => Promise<unknown>): Promise<boolean> {
  let sending = false
  const own = Object.getOwnPropertyDescriptor(reply, 'send')
  const send = reply.send
  reply.send = function (this: FastifyReply, payload?: unknown) {
    sending = true
    return send.call(this, payload)
  }
  try {
    await respond()
  } finally {
    if (own === undefined) delete (reply as { send?: unknown }).send
    else Object.defineProperty(reply, 'send', own)
  }
  return sending || reply.sent
}

/** The session in the cookie, or with the store option in a store: the one choice of mode. */
function backendOf (config: ResolvedOptions, rules: SaveRules, cookies: SessionCookies): SessionBackend {
  const link = new BackendLink(rules)
  const common = { keys: config.keys, absoluteLifetime: config.absoluteLifetime, createdKey: CREATED_KEY, settings: { ...config.settings, link }, cacheSize: config.cacheSize }
  const backend = config.store === undefined
    ? new CookieBackend({ ...common, maxSessionSize: config.maxSessionSize, maxTokenLength: cookies.maxReadLength, revocation: config.revocation })
    : new StoreBackend({ ...common, ...config.store })
  link.bind(backend)
  return backend
}

const plugin: FastifyPluginAsync<EncryptedSessionOptions> = async (fastify, options) => {
  const config = await resolveOptions(options)
  const { sessionName, cookieName } = config
  // Signed cookies (reply.setCookie(..., { signed: true })) work as with secure-session, under
  // secrets derived from the session key; an app that registered @fastify/cookie keeps its own.
  await ensureCookiePlugin(fastify, config.cookieSecrets)
  decorateOnce(fastify, sessionName, options.store)
  const registry = registryOf(fastify)
  if (registry.has(sessionName)) throw new TypeError(`fastify-encrypted-session: a session named "${sessionName}" is already registered; give the second one another sessionName`)
  for (const [otherName, other] of registry) {
    if (cookieNamesClash(other.cookies.cookieName, cookieName)) {
      throw new TypeError(`fastify-encrypted-session: cookieName "${cookieName}" would share cookies with session "${otherName}" (cookie "${other.cookies.cookieName}" and its chunks "${other.cookies.cookieName}.0", ...); choose another cookieName`)
    }
  }
  const cookies = new SessionCookies({
    cookieName,
    attributes: { ...config.cookie },
    maxSessionSize: config.maxSessionSize,
    maxTtl: config.maxTtl,
    browserSessionTtl: config.browserSession ? config.ttl : undefined,
    serialize: fastify.serializeCookie
  })
  const rules: SaveRules = {
    rolling: config.rolling,
    createdKey: config.absoluteLifetime === undefined ? undefined : CREATED_KEY
  }
  const backend = backendOf(config, rules, cookies)
  registry.set(sessionName, { backend, cookies })

  fastify.decorateRequest(sessionName, null)

  function settle (request: FastifyRequest, opened: Session | SessionFailure): void {
    let session: Session
    if (typeof opened === 'string') {
      request.log.debug({ sessionName, reason: opened }, 'fastify-encrypted-session: session cookie ignored')
      session = backend.fresh(true)
    } else {
      session = opened
    }
    ;(request as SessionRequest)[sessionName] = session
  }

  // Callback-style hooks: a request without a cookie, or with one the cache knows, is handled
  // without a single promise. Real work returns its promise instead of calling done() from a
  // continuation: Fastify then routes whatever happens next, a second reply of a buggy route
  // included, through its own error handling, as for any async hook, and nothing is left as an
  // unhandled rejection.
  fastify.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void) => {
    if (request.routeOptions.config.session === false) {
      done()
      return
    }
    // request.cookies is filled by @fastify/cookie's own onRequest hook, unless the app set
    // that plugin's `hook` option to a later stage or off: then parse the header here.
    const token = cookies.read(request.cookies ?? fastify.parseCookie(request.headers.cookie ?? ''))
    if (token === undefined) {
      (request as SessionRequest)[sessionName] = backend.fresh()
      done()
      return
    }
    const now = nowSeconds()
    const known = backend.lookup(token, now)
    if (known !== undefined) {
      settle(request, known)
      done()
      return
    }
    return backend.open(token, now).then((opened) => { settle(request, opened) })
  })

  // Requests whose session of this registration could not be saved: the error reply comes
  // through onSend again, and trying once more would double the wait for a store that is down.
  const failedSaves = new WeakSet<FastifyRequest>()
  const failed: (request: FastifyRequest, error: unknown) => never = (request, error) => {
    failedSaves.add(request)
    throw error
  }
  fastify.addHook('onSend', (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (error: Error | null, payload?: unknown) => void) => {
    replying.add(request)
    const session = (request as SessionRequest)[sessionName]
    // Absent when onRequest did not run (an earlier hook replied) or the route opted out.
    if (session == null || failedSaves.has(request)) {
      done(null, payload)
      return
    }
    let decision
    try {
      decision = session[kDecide](nowSeconds(), rules)
    } catch (error) {
      // A value changed in place after set() so that JSON can no longer hold it (a cycle, a
      // BigInt, a __proto__ key): the reply stands, the session is not saved.
      request.log.error({ sessionName, err: error }, 'fastify-encrypted-session: session not saved, its data cannot be serialised')
      done(null, payload)
      return
    }
    const overrides = session[kCookieAttributes]
    const log = request.log
    if (decision.action === 'keep') {
      // save() before the reply made the token the cookie carries.
      const pending = session[kPending]
      if (pending !== undefined) cookies.write(reply, { token: pending.token, maxAge: pending.ttl, overrides, requested: true, log })
      done(null, payload)
      return
    }
    if (decision.action === 'clear') {
      const { requested } = decision
      const clear = (): void => { cookies.write(reply, { token: null, overrides, requested, log }) }
      const ending = backend.end(session, decision.keysDeleted)
      if (ending !== undefined) return ending.then((ended) => { if (ended) clear() }, (error: unknown) => failed(request, error))
      clear()
      done(null, payload)
      return
    }
    const { requested, ttl } = decision
    return backend.save(session, decision).then((token) => {
      if (token !== undefined) cookies.write(reply, { token, maxAge: ttl, overrides, requested, log })
    }, (error: unknown) => {
      if (!(error instanceof SessionTooLarge)) failed(request, error)
      request.log.error({ sessionName, size: error.size, maxSessionSize: error.maxSessionSize }, 'fastify-encrypted-session: session not saved, it is larger than maxSessionSize')
    })
  })
}

/** Encrypted cookie sessions; see README.md for every option. */
export const encryptedSession = fp(plugin, {
  fastify: '5.x',
  name: 'fastify-encrypted-session'
})

export default encryptedSession
export type { SessionRecord }
