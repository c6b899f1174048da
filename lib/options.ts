// Registration options: checked once, with errors that name the option and never echo a key.
import { base64 } from './fernet/base64.js'
import { bytesOf } from './fernet/bytes.js'
import { DEFAULT_ITERATIONS, MIN_PASSPHRASE_BYTES, deriveKey } from './fernet/derive-key.js'
import { keyBytes } from './fernet/fernet.js'
import { hkdf } from './fernet/hkdf.js'
import { type CookieOverrides, Session, type SessionSettings } from './session.js'
import { ExpressStoreAdapter } from './stores/express.js'
import { type ExpressStoreLike, type SessionStore, isExpressStore, isSessionStore } from './stores/store.js'

export type KeyMaterial = string | Uint8Array

/** Cookie attributes we pass on to @fastify/cookie; lifetime comes from `ttl`. */
export interface SessionCookieOptions {
  domain?: string
  path?: string
  /** Default true: browsers accept Secure cookies on http://localhost too. `'auto'` follows request.protocol. */
  secure?: boolean | 'auto'
  sameSite?: 'lax' | 'strict' | 'none' | boolean
  httpOnly?: boolean
  partitioned?: boolean
  priority?: 'low' | 'medium' | 'high'
}

export interface EncryptedSessionOptions {
  /** A Fernet key, a list of them, or a comma-separated list: the first encrypts, all decrypt. */
  key?: KeyMaterial | readonly KeyMaterial[]
  /** A passphrase of at least 32 bytes to derive the key from (PBKDF2-HMAC-SHA256), with `salt`. */
  secret?: string
  /** Salt for `secret`, at least 16 bytes: text or bytes. */
  salt?: string | Uint8Array
  /** PBKDF2 rounds for `secret`; default 600,000. */
  iterations?: number
  /** Request property holding the session; default 'session'. Register again with another name for a second session. */
  sessionName?: string
  /** Cookie name; default the sessionName ('session', as Flask uses). */
  cookieName?: string
  /** Seconds a session lives after its token was issued; the cookie's Max-Age too. Default 86,400 (one day). */
  ttl?: number
  /** The longest lifetime a session may choose with `session.options({ maxAge })` ("remember me"); default ttl. */
  maxTtl?: number
  /**
   * Re-issue the token once it is this many seconds old, so active users stay signed in and idle
   * ones expire. true (default): a quarter of ttl. false: only when the session changes.
   */
  rolling?: boolean | number
  /** Seconds after creation at which a session ends however active it is; off by default. */
  absoluteLifetime?: number
  /**
   * true: the cookie carries no Max-Age, so the browser drops it when it closes; ttl is still
   * enforced by the server. A session that chose its own lifetime (options({ maxAge })) still
   * gets a lasting cookie. Default false.
   */
  browserSession?: boolean
  /** Cookie attributes; defaults HttpOnly, SameSite=Lax, Path=/, Secure. */
  cookie?: SessionCookieOptions
  /** Session key of the logged-in user for login()/user; default 'current_user' (sanic-cookies' AuthSession). */
  userKey?: string
  /** Keys of the anonymous session that survive login(); default none. */
  keepOnLogin?: readonly string[]
  /**
   * Longest session token, in characters, over all its cookies; default 4,000: one cookie, about
   * 2.9 KB of JSON, which leaves room for other cookies behind nginx and Apache defaults. Past it
   * a session is not saved (and an error logged); a longer incoming token is refused before
   * decryption. Larger values split the token across cookies (see the README for server limits).
   */
  maxSessionSize?: number
  /**
   * How many verified tokens to remember, so that a returning cookie skips decryption; each hit
   * still has its ttl checked. Default 10,000 (a few MB at most); 0 turns it off.
   */
  cacheSize?: number
  /**
   * Keep the session in a store, with only a token of its id in the cookie: a MemoryStore, a
   * RedisStore, or any express-session store (get, set, destroy, optional touch).
   */
  store?: SessionStore | ExpressStoreLike
  /** Milliseconds to wait for the store before answering 503; default 2,000. */
  storeTimeout?: number
  /** Store the session's JSON in a Fernet token under the key (default true), or as plain JSON. */
  encryptStore?: boolean
  /** The user id revokeSessions() looks for: default user.id, or the user itself when a string or number. */
  userId?: (user: unknown) => string | number | undefined
  /**
   * Cookie mode: a store (anything `store` takes) for the small per-user revocation records
   * that make logged-in cookie sessions revocable with revokeSessions(). The session itself
   * stays in the cookie; every request of a logged-in user reads its user's record.
   */
  revocationStore?: SessionStore | ExpressStoreLike
}

/** revokeSessions()'s second argument, when not a sessionName. */
export interface RevokeOptions {
  /** The registration whose sessions to end; default 'session'. */
  sessionName?: string
  /** A session of the user to keep (usually request.session): re-issued under the new generation. */
  except?: Session
}

/** Session key holding the creation time (Unix seconds) when absoluteLifetime is on. */
export const CREATED_KEY = '_created'
export const DEFAULT_TTL = 86_400
export const DEFAULT_MAX_SESSION_SIZE = 4_000
export const DEFAULT_CACHE_SIZE = 10_000
export const DEFAULT_STORE_TIMEOUT = 2_000
/** secure-session's floor for a passphrase, and ours: shorter ones are guessable. */
export const MIN_SECRET_BYTES = MIN_PASSPHRASE_BYTES
/**
 * The longest ttl and maxTtl: 400 days, the most a browser keeps a cookie (RFC 6265bis; Chrome
 * caps Max-Age there). More is never what was meant, and most often milliseconds, a
 * @fastify/session habit: 86_400_000 would be 1,000 days.
 */
export const MAX_LIFETIME = 400 * 86_400
// The smallest bound that still holds a session of a few small values.
const MIN_MAX_SESSION_SIZE = 1024
/** The registration whose cookie stays plain Fernet under the key, as Python reads and writes it. */
export const DEFAULT_SESSION_NAME = 'session'

export type CookieAttributes = Required<Pick<SessionCookieOptions, 'path' | 'httpOnly' | 'sameSite' | 'secure'>> & SessionCookieOptions

export interface ResolvedStore {
  /** A SessionStore; an express-session store comes adapted. */
  store: SessionStore
  timeout: number
  encrypt: boolean
  userId: (user: unknown) => string | number | undefined
}

export interface ResolvedOptions {
  sessionName: string
  cookieName: string
  /** Raw 32-byte keys, the first encrypts; bound to this registration unless it is the default one. */
  keys: Uint8Array[]
  /** Secrets for @fastify/cookie's signed cookies, derived from the keys, in the same order. */
  cookieSecrets: string[]
  ttl: number
  maxTtl: number
  rolling: boolean | number
  absoluteLifetime: number | undefined
  cookie: CookieAttributes
  browserSession: boolean
  settings: SessionSettings
  maxSessionSize: number
  cacheSize: number
  store: ResolvedStore | undefined
  /** Cookie mode's revocation store, with its timeout and user ids. */
  revocation: Omit<ResolvedStore, 'encrypt'> | undefined
}

const PREFIX = 'fastify-encrypted-session:'
const TOP_LEVEL = new Set(['key', 'secret', 'salt', 'iterations', 'sessionName', 'cookieName', 'ttl', 'maxTtl', 'rolling', 'absoluteLifetime', 'cookie', 'userKey', 'keepOnLogin', 'maxSessionSize', 'cacheSize', 'store', 'storeTimeout', 'encryptStore', 'userId', 'revocationStore', 'browserSession'])
const isString = (value: unknown): boolean => typeof value === 'string' && value !== ''
const isBoolean = (value: unknown): boolean => typeof value === 'boolean'
const COOKIE_VALUE_CHECKS: Array<[string, (value: unknown) => boolean, string]> = [
  ['domain', isString, 'a non-empty string'],
  ['path', (value) => isString(value) && (value as string).startsWith('/'), 'a string starting with /'],
  ['secure', (value) => isBoolean(value) || value === 'auto', "true, false or 'auto'"],
  ['sameSite', (value) => isBoolean(value) || value === 'lax' || value === 'strict' || value === 'none', "'lax', 'strict', 'none', true or false"],
  ['httpOnly', isBoolean, 'true or false'],
  ['partitioned', isBoolean, 'true or false'],
  ['priority', (value) => value === 'low' || value === 'medium' || value === 'high', "'low', 'medium' or 'high'"]
]
const COOKIE_KEYS = COOKIE_VALUE_CHECKS.map(([name]) => name)
// RFC 6265 cookie-name: an RFC 7230 token.
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

// What a @fastify/secure-session or @fastify/session user brings along, and what it is here.
const PEER_OPTIONS = new Map([
  ['expiry', ': the lifetime in seconds is ttl here'],
  ['cookieOptions', ': cookie attributes go in cookie here'],
  ['saveUninitialized', ': an empty session is never saved here'],
  ['resave', ': a session is saved only when it changed (or is renewed) here'],
  ['idGenerator', ': store mode draws 128 random bits for every id']
])

function optionError (message: string): TypeError {
  return new TypeError(`${PREFIX} ${message}`)
}

function positiveWhole (value: unknown, name: string, unit = 'seconds'): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw optionError(`${name} must be a whole number of ${unit}, 1 or more`)
  }
  return value as number
}

/** A cookie's lifetime in seconds, refused past what a browser keeps, with the likely slip named. */
function lifetime (value: unknown, name: string): number {
  const seconds = positiveWhole(value, name)
  if (seconds > MAX_LIFETIME) {
    throw optionError(`${name} is in seconds: ${seconds} is ${Math.round(seconds / 86_400)} days, more than the 400 days (${MAX_LIFETIME}) a browser keeps a cookie; ${seconds} milliseconds would be ${name}: ${Math.round(seconds / 1000)}`)
  }
  return seconds
}

function keyList (key: EncryptedSessionOptions['key']): KeyMaterial[] {
  if (typeof key === 'string') return key.split(',').map((part) => part.trim())
  if (key instanceof Uint8Array) return [key]
  if (Array.isArray(key)) return key as KeyMaterial[]
  throw optionError('key must be a Fernet key, an array of keys, or a comma-separated string of keys')
}

function rawKeys (key: EncryptedSessionOptions['key']): Uint8Array[] {
  const list = keyList(key)
  if (list.length === 0) throw optionError('key must name at least one key')
  return list.map((material, index) => {
    try {
      return keyBytes(material)
    } catch (error) {
      // The message says what a key must be and never includes the key itself.
      throw optionError(`key ${index + 1} of ${list.length}: ${(error as Error).message}. Make one with \`npx fastify-encrypted-session keygen\``)
    }
  })
}

async function keysFrom (options: EncryptedSessionOptions): Promise<Uint8Array[]> {
  const { key, secret, salt, iterations } = options
  if (key !== undefined && secret !== undefined) throw optionError('give either key or secret (with salt), not both')
  if (key !== undefined) {
    if (salt !== undefined || iterations !== undefined) throw optionError('salt and iterations go with secret, not with key')
    return rawKeys(key)
  }
  if (secret === undefined) throw optionError('a key is required: set key (from `npx fastify-encrypted-session keygen`) or secret and salt')
  if (typeof secret !== 'string' || bytesOf(secret, 'secret').length < MIN_SECRET_BYTES) {
    throw optionError(`secret must be a passphrase of at least ${MIN_SECRET_BYTES} bytes; a generated key (\`npx fastify-encrypted-session keygen\`) is better still`)
  }
  if (typeof salt !== 'string' && !(salt instanceof Uint8Array)) {
    throw optionError('secret needs a salt: a string or bytes, at least 16 bytes, the same on every server')
  }
  try {
    return [keyBytes(await deriveKey(secret, salt, { iterations: iterations ?? DEFAULT_ITERATIONS }))]
  } catch (error) {
    throw optionError((error as Error).message)
  }
}

/** Checks cookie attribute values; `what` names where they came from in the error. */
function checkedAttributes (given: Record<string, unknown>, what: string): Record<string, unknown> {
  const checked: Record<string, unknown> = {}
  for (const [name, check, expected] of COOKIE_VALUE_CHECKS) {
    if (given[name] === undefined) continue
    if (!check(given[name])) throw optionError(`${what}.${name} must be ${expected}`)
    checked[name] = given[name]
  }
  return checked
}

function cookieOptions (cookie: unknown): CookieAttributes {
  if (cookie === undefined) cookie = {}
  if (typeof cookie !== 'object' || cookie === null) throw optionError('cookie must be an object of cookie attributes')
  for (const name of Object.keys(cookie)) {
    if (name === 'maxAge' || name === 'expires') throw optionError(`cookie.${name} is set from ttl; set ttl instead (and maxTtl with session.options({ maxAge }) for a longer one, or browserSession: true for a cookie that ends with the browser)`)
    if (name === 'signed') throw optionError('cookie.signed is not needed: the Fernet token is authenticated (HMAC-SHA256) already')
    if (!COOKIE_KEYS.includes(name)) throw optionError(`cookie.${name} is not a supported cookie option (${COOKIE_KEYS.join(', ')})`)
  }
  const resolved = { path: '/', httpOnly: true, sameSite: 'lax' as const, secure: true, ...checkedAttributes(cookie as Record<string, unknown>, 'cookie') }
  checkSameSite(resolved, 'cookie')
  return resolved
}

function checkSameSite (attributes: Record<string, unknown>, what: string): void {
  if (attributes.sameSite === 'none' && attributes.secure === false) {
    throw optionError(`${what}.sameSite "none" needs secure: browsers drop SameSite=None cookies that are not Secure`)
  }
}

/** The user id revokeSessions() matches: user.id, or the user itself when a string or number. */
export function defaultUserId (user: unknown): string | number | undefined {
  if (typeof user === 'string' || typeof user === 'number') return user
  if (typeof user === 'object' && user !== null) {
    const id = (user as Record<string, unknown>).id
    if (typeof id === 'string' || typeof id === 'number') return id
  }
  return undefined
}

function storeOptions (options: EncryptedSessionOptions, maxTtl: number): ResolvedStore | undefined {
  const { store, storeTimeout, encryptStore, userId, revocationStore } = options
  if (store !== undefined && revocationStore !== undefined) {
    throw optionError('revocationStore is for cookie mode; with store, the revocation records go in the store')
  }
  const given = store ?? revocationStore
  if (given === undefined) {
    if (storeTimeout !== undefined || encryptStore !== undefined || userId !== undefined) {
      throw optionError('storeTimeout, encryptStore and userId go with store (storeTimeout and userId also with revocationStore)')
    }
    return undefined
  }
  if (store === undefined && encryptStore !== undefined) throw optionError('encryptStore goes with store')
  if (encryptStore !== undefined && typeof encryptStore !== 'boolean') throw optionError('encryptStore must be true or false')
  if (userId !== undefined && typeof userId !== 'function') throw optionError('userId must be a function from the user to its id')
  const timeout = positiveWhole(storeTimeout ?? DEFAULT_STORE_TIMEOUT, 'storeTimeout', 'milliseconds')
  const encrypt = encryptStore ?? true
  const name = store === undefined ? 'revocationStore' : 'store'
  let resolved: SessionStore
  if (isSessionStore(given)) resolved = given
  else if (isExpressStore(given)) resolved = new ExpressStoreAdapter(given, { plain: !encrypt, timeout, endedFor: maxTtl * 1000 })
  else throw optionError(`${name} must be a MemoryStore, a RedisStore, or an express-session store (with get, set and destroy methods)`)
  return { store: resolved, timeout, encrypt, userId: userId ?? defaultUserId }
}

/** revokeSessions()'s arguments, checked: the registration, and the session to keep. */
export function revokeOptions (userId: unknown, options: string | RevokeOptions | undefined): { sessionName: string | undefined, except: Session | undefined } {
  if (typeof userId !== 'string' && typeof userId !== 'number') throw new TypeError(`${PREFIX} revokeSessions(userId) takes the user's id, a string or a number`)
  if (options === undefined || typeof options === 'string') return { sessionName: options, except: undefined }
  const { sessionName, except } = options
  if (except !== undefined && !(except instanceof Session)) throw new TypeError(`${PREFIX} revokeSessions(userId, { except }) takes a session (request.session)`)
  return { sessionName, except }
}

export async function resolveOptions (options: EncryptedSessionOptions | undefined): Promise<ResolvedOptions> {
  if (Array.isArray(options)) throw optionError('options are one object per session: register the plugin once for each session, with its own sessionName')
  if (typeof options !== 'object' || options === null) throw optionError('options must be an object with at least a key')
  for (const name of Object.keys(options)) {
    if (!TOP_LEVEL.has(name)) throw optionError(`unknown option "${name}"${PEER_OPTIONS.get(name) ?? ''}`)
  }
  const sessionName = options.sessionName ?? DEFAULT_SESSION_NAME
  if (typeof sessionName !== 'string' || !/^[A-Za-z_$][\w$]*$/.test(sessionName)) {
    throw optionError('sessionName must be a JavaScript identifier (it becomes request[sessionName])')
  }
  const cookieName = options.cookieName ?? sessionName
  if (typeof cookieName !== 'string' || !COOKIE_NAME.test(cookieName)) {
    throw optionError('cookieName must be a valid cookie name (letters, digits and !#$%&\'*+-.^_`|~)')
  }
  const ttl = lifetime(options.ttl ?? DEFAULT_TTL, 'ttl')
  const maxTtl = lifetime(options.maxTtl ?? ttl, 'maxTtl')
  if (maxTtl < ttl) throw optionError('maxTtl must be at least ttl: it bounds how long a session may choose to live')
  const rolling = options.rolling ?? true
  if (typeof rolling !== 'boolean') {
    positiveWhole(rolling, 'rolling (when a number)')
    if (rolling >= ttl) throw optionError('rolling must be less than ttl, or the session expires before it is renewed')
  }
  const absoluteLifetime = options.absoluteLifetime === undefined ? undefined : positiveWhole(options.absoluteLifetime, 'absoluteLifetime')
  const cookie = cookieOptions(options.cookie)
  const browserSession = options.browserSession ?? false
  if (typeof browserSession !== 'boolean') throw optionError('browserSession must be true or false')
  const userKey = options.userKey ?? 'current_user'
  if (typeof userKey !== 'string' || userKey === '' || userKey === '__proto__') throw optionError('userKey must be a non-empty string')
  const keepOnLogin = options.keepOnLogin ?? []
  if (!Array.isArray(keepOnLogin) || !keepOnLogin.every((key) => typeof key === 'string')) {
    throw optionError('keepOnLogin must be an array of session keys')
  }
  const maxSessionSize = options.maxSessionSize ?? DEFAULT_MAX_SESSION_SIZE
  if (!Number.isSafeInteger(maxSessionSize) || maxSessionSize < MIN_MAX_SESSION_SIZE) {
    throw optionError(`maxSessionSize must be a whole number of characters, ${MIN_MAX_SESSION_SIZE} or more`)
  }
  const cacheSize = options.cacheSize ?? DEFAULT_CACHE_SIZE
  if (!Number.isSafeInteger(cacheSize) || cacheSize < 0) throw optionError('cacheSize must be a whole number of entries, 0 (off) or more')
  const stores = storeOptions(options, maxTtl)
  const store = options.store === undefined ? undefined : stores
  const revocation = store === undefined ? stores : undefined
  const configured = await keysFrom(options)
  // Tokens of one registration never open another's, even under one key: every registration
  // but the default one encrypts under a key derived for its name. The default keeps the key
  // itself, so its cookie stays what Python reads and writes.
  const keys = sessionName === DEFAULT_SESSION_NAME
    ? configured
    : await Promise.all(configured.map(async (key) => await hkdf(key, `session ${sessionName}`)))
  const cookieSecrets = await Promise.all(configured.map(async (key) => base64.encode(await hkdf(key, 'cookie signing'))))
  const cookieAttributes = (given: Record<string, unknown>): Record<string, unknown> => {
    const checked = checkedAttributes(given, 'session.options()')
    checkSameSite({ ...cookie, ...checked }, 'session.options()')
    return checked
  }
  const settings: SessionSettings = Object.freeze({ userKey, keepOnLogin: Object.freeze([...keepOnLogin]), ttl, maxTtl, cookieAttributes, cookie: Object.freeze({ ...cookie }), browserSession })
  return { sessionName, cookieName, keys, cookieSecrets, ttl, maxTtl, rolling, absoluteLifetime, cookie, browserSession, settings, maxSessionSize, cacheSize, store, revocation }
}

export type { CookieOverrides }
