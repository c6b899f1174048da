// Registration options: checked once, with errors that name the option and never echo a key.
import { DEFAULT_ITERATIONS, deriveKey } from './derive-key.js'
import { Fernet } from './fernet.js'
import type { SessionSettings } from './session.js'

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
  /** A passphrase to derive the key from (PBKDF2-HMAC-SHA256), with `salt`. */
  secret?: string
  /** Salt for `secret`, at least 16 bytes. */
  salt?: string
  /** PBKDF2 rounds for `secret`; default 600,000. */
  iterations?: number
  /** Request property holding the session; default 'session'. Register again with another name for a second session. */
  sessionName?: string
  /** Cookie name; default the sessionName ('session', as Flask uses). */
  cookieName?: string
  /** Seconds a session lives after its token was issued; the cookie's Max-Age too. Default 86,400 (one day). */
  ttl?: number
  /**
   * Re-issue the token once it is this many seconds old, so active users stay signed in and idle
   * ones expire. true (default): a quarter of ttl. false: only when the session changes.
   */
  rolling?: boolean | number
  /** Seconds after creation at which a session ends however active it is; off by default. */
  absoluteLifetime?: number
  /** Cookie attributes; defaults HttpOnly, SameSite=Lax, Path=/, Secure. */
  cookie?: SessionCookieOptions
  /** Session key of the logged-in user for login()/user; default 'current_user' (sanic-cookies' AuthSession). */
  userKey?: string
  /** Keys of the anonymous session that survive login(); default none. */
  keepOnLogin?: readonly string[]
  /**
   * Longest session token, in characters, over all its cookies; default 12,800, room for about
   * 9.5 KB of JSON within Node's default 16 KB limit on request headers. Past it a session is
   * not saved (and an error logged); a longer incoming token is refused before decryption.
   */
  maxSessionSize?: number
  /**
   * How many verified tokens to remember, so that a returning cookie skips decryption; each hit
   * still has its ttl checked. Default 10,000 (a few MB at most); 0 turns it off.
   */
  cacheSize?: number
}

/** Session key holding the creation time (Unix seconds) when absoluteLifetime is on. */
export const CREATED_KEY = '_created'
export const DEFAULT_TTL = 86_400
export const DEFAULT_MAX_SESSION_SIZE = 12_800
export const DEFAULT_CACHE_SIZE = 10_000
// The smallest bound that still holds a session of a few small values.
const MIN_MAX_SESSION_SIZE = 1024

export interface ResolvedOptions {
  sessionName: string
  cookieName: string
  keys: Fernet[]
  ttl: number
  rollingAfter: number | undefined
  absoluteLifetime: number | undefined
  cookie: Required<Pick<SessionCookieOptions, 'path' | 'httpOnly' | 'sameSite' | 'secure'>> & SessionCookieOptions
  settings: SessionSettings
  maxSessionSize: number
  cacheSize: number
}

const PREFIX = 'fastify-encrypted-session:'
const TOP_LEVEL = new Set(['key', 'secret', 'salt', 'iterations', 'sessionName', 'cookieName', 'ttl', 'rolling', 'absoluteLifetime', 'cookie', 'userKey', 'keepOnLogin', 'maxSessionSize', 'cacheSize'])
const COOKIE_KEYS = new Set(['domain', 'path', 'secure', 'sameSite', 'httpOnly', 'partitioned', 'priority'])
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
// RFC 6265 cookie-name: an RFC 7230 token.
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

function optionError (message: string): TypeError {
  return new TypeError(`${PREFIX} ${message}`)
}

function positiveSeconds (value: unknown, name: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw optionError(`${name} must be a whole number of seconds, 1 or more`)
  }
  return value as number
}

function keyList (key: EncryptedSessionOptions['key']): KeyMaterial[] {
  if (typeof key === 'string') return key.split(',').map((part) => part.trim())
  if (key instanceof Uint8Array) return [key]
  if (Array.isArray(key)) return key as KeyMaterial[]
  throw optionError('key must be a Fernet key, an array of keys, or a comma-separated string of keys')
}

function fernetsOf (key: EncryptedSessionOptions['key'], maxTokenLength: number): Fernet[] {
  const list = keyList(key)
  if (list.length === 0) throw optionError('key must name at least one key')
  return list.map((material, index) => {
    try {
      return new Fernet(material, { maxTokenLength })
    } catch (error) {
      // Fernet's message says what a key must be and never includes the key itself.
      throw optionError(`key ${index + 1} of ${list.length}: ${(error as Error).message}. Make one with \`npx fastify-encrypted-session keygen\``)
    }
  })
}

async function keysFrom (options: EncryptedSessionOptions, maxTokenLength: number): Promise<Fernet[]> {
  const { key, secret, salt, iterations } = options
  if (key !== undefined && secret !== undefined) throw optionError('give either key or secret (with salt), not both')
  if (key !== undefined) {
    if (salt !== undefined || iterations !== undefined) throw optionError('salt and iterations go with secret, not with key')
    return fernetsOf(key, maxTokenLength)
  }
  if (secret === undefined) throw optionError('a key is required: set key (from `npx fastify-encrypted-session keygen`) or secret and salt')
  if (typeof secret !== 'string' || secret.length === 0) throw optionError('secret must be a non-empty string')
  if (typeof salt !== 'string') throw optionError('secret needs a salt: a string of at least 16 bytes, the same on every server')
  try {
    return [new Fernet(await deriveKey(secret, salt, { iterations: iterations ?? DEFAULT_ITERATIONS }), { maxTokenLength })]
  } catch (error) {
    throw optionError((error as Error).message)
  }
}

function cookieOptions (cookie: unknown): ResolvedOptions['cookie'] {
  if (cookie === undefined) cookie = {}
  if (typeof cookie !== 'object' || cookie === null) throw optionError('cookie must be an object of cookie attributes')
  for (const name of Object.keys(cookie)) {
    if (name === 'maxAge' || name === 'expires') throw optionError(`cookie.${name} is set from ttl; set ttl instead`)
    if (!COOKIE_KEYS.has(name)) throw optionError(`cookie.${name} is not a supported cookie option (${[...COOKIE_KEYS].join(', ')})`)
  }
  const given = cookie as Record<string, unknown>
  for (const [name, check, expected] of COOKIE_VALUE_CHECKS) {
    if (given[name] !== undefined && !check(given[name])) throw optionError(`cookie.${name} must be ${expected}`)
  }
  const resolved = { path: '/', httpOnly: true, sameSite: 'lax' as const, secure: true, ...cookie as SessionCookieOptions }
  if (resolved.sameSite === 'none' && resolved.secure === false) {
    throw optionError('cookie.sameSite "none" needs cookie.secure: browsers drop SameSite=None cookies that are not Secure')
  }
  return resolved
}

export async function resolveOptions (options: EncryptedSessionOptions | undefined): Promise<ResolvedOptions> {
  if (typeof options !== 'object' || options === null) throw optionError('options must be an object with at least a key')
  for (const name of Object.keys(options)) {
    if (!TOP_LEVEL.has(name)) throw optionError(`unknown option "${name}"`)
  }
  const sessionName = options.sessionName ?? 'session'
  if (typeof sessionName !== 'string' || !/^[A-Za-z_$][\w$]*$/.test(sessionName)) {
    throw optionError('sessionName must be a JavaScript identifier (it becomes request[sessionName])')
  }
  const cookieName = options.cookieName ?? sessionName
  if (typeof cookieName !== 'string' || !COOKIE_NAME.test(cookieName)) {
    throw optionError('cookieName must be a valid cookie name (letters, digits and !#$%&\'*+-.^_`|~)')
  }
  const ttl = positiveSeconds(options.ttl ?? DEFAULT_TTL, 'ttl')
  const rolling = options.rolling ?? true
  let rollingAfter: number | undefined
  if (rolling === true) rollingAfter = Math.floor(ttl / 4)
  else if (rolling !== false) {
    rollingAfter = positiveSeconds(rolling, 'rolling (when a number)')
    if (rollingAfter >= ttl) throw optionError('rolling must be less than ttl, or the session expires before it is renewed')
  }
  const absoluteLifetime = options.absoluteLifetime === undefined ? undefined : positiveSeconds(options.absoluteLifetime, 'absoluteLifetime')
  const cookie = cookieOptions(options.cookie)
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
  const keys = await keysFrom(options, maxSessionSize)
  const settings: SessionSettings = Object.freeze({ userKey, keepOnLogin: Object.freeze([...keepOnLogin]) })
  return { sessionName, cookieName, keys, ttl, rollingAfter, absoluteLifetime, cookie, settings, maxSessionSize, cacheSize }
}
