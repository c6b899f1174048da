// lib/cookies/: how a token sits in cookies (one cookie, or chunks) and is read back. It may
// import its own files and small header helpers; nothing of backends/ or stores/, which sit above
// and beside it.
// How a session's token is laid out in cookies and written to a reply: one plain cookie when it
// fits, chunks otherwise, every stale piece cleared, and nothing a shared cache could hand to
// another user.
import vary from 'vary'
import { type CookieJar, MAX_COOKIE_BYTES, MAX_COOKIE_PAIR_BYTES, chunkName, readSessionCookies, splitToken } from './cookie-chunks.js'

type Attributes = Record<string, unknown>

/** What of a Fastify reply the cookie writer uses. */
export interface CookieReply {
  setCookie: (name: string, value: string, options: Attributes) => unknown
  clearCookie: (name: string, options: Attributes) => unknown
  getHeader: (name: string) => unknown
  header: (name: string, value: string) => unknown
  /** The request, for secure: 'auto'. */
  request?: { protocol: string }
}

export interface CookieLog {
  warn: (object: object, message: string) => void
  debug: (object: object, message: string) => void
  error: (object: object, message: string) => void
}

export interface SessionCookiesOptions {
  cookieName: string
  /** Attributes of every session cookie, without a lifetime. */
  attributes: Attributes
  /** Longest token over all its cookies. */
  maxSessionSize: number
  /** Longest Max-Age a session cookie can carry, for the room its attribute takes. */
  maxTtl: number
  /**
   * browserSession: a session of this lifetime (the registration's ttl, so one that did not choose
   * its own) gets a cookie without Max-Age, which the browser drops when it closes.
   */
  browserSessionTtl?: number | undefined
  /** @fastify/cookie's serializer, to measure what a name and attributes take. */
  serialize: (name: string, value: string, options: Attributes) => string
}

export interface CookieWrite {
  /** The token, or null to clear the session's cookies. */
  token: string | null
  /** Max-Age of a set cookie, in seconds. */
  maxAge?: number
  /** Attributes session.options() chose for this response. */
  overrides?: Attributes | undefined
  /** The app changed the session; false for housekeeping (renewal, rotation, a refused cookie). */
  requested: boolean
  log: CookieLog
}

const PREFIX = 'fastify-encrypted-session:'
// Fernet tokens hold only [A-Za-z0-9_=-]: written as they are, without percent-encoding, so
// that Werkzeug and other Python stacks read the cookie unchanged.
const writeRaw = (value: string): string => value
const SHARED_CACHE = /(?:^|,)\s*(?:public|s-maxage\s*=[^,]*)\s*(?=,|$)/gi

export class SessionCookies {
  readonly cookieName: string
  /** How many chunk cookies a session under maxSessionSize can take; 0 when it always fits one cookie. */
  readonly maxChunks: number
  /**
   * Longest token these cookies can bring: what browsers keep of the plain cookie, or of every
   * chunk read. Another app sharing the cookie (Flask writes Python's roomier JSON) may write
   * past maxSessionSize, which bounds only what the plugin writes.
   */
  readonly maxReadLength: number
  readonly #attributes: Attributes
  readonly #serialize: SessionCookiesOptions['serialize']
  readonly #maxTtl: number
  readonly #browserSessionTtl: number | undefined
  readonly #plainRoom: number
  readonly #chunkRoom: number

  constructor (options: SessionCookiesOptions) {
    this.cookieName = options.cookieName
    this.#attributes = { ...options.attributes, encode: writeRaw }
    this.#serialize = options.serialize
    this.#maxTtl = options.maxTtl
    this.#browserSessionTtl = options.browserSessionTtl
    // Room for a chunk name with as many digits as any index can have.
    this.#chunkRoom = this.#room(chunkName(this.cookieName, options.maxSessionSize), this.#attributes)
    if (this.#chunkRoom < 1024) {
      throw new TypeError(`${PREFIX} the cookie name and attributes leave less than 1,024 of a cookie's 4,096 bytes for the session; shorten them`)
    }
    this.#plainRoom = this.#room(this.cookieName, this.#attributes)
    this.maxChunks = options.maxSessionSize <= this.#plainRoom ? 0 : Math.ceil(options.maxSessionSize / this.#chunkRoom)
    this.maxReadLength = Math.max(
      MAX_COOKIE_PAIR_BYTES - this.cookieName.length,
      this.maxChunks * (MAX_COOKIE_PAIR_BYTES - chunkName(this.cookieName, 0).length)
    )
  }

  /**
   * Bytes left for the value in one Set-Cookie under `name`; Secure and the longest Max-Age
   * counted even when absent, so that a cookie always fits.
   */
  #room (name: string, attributes: Attributes): number {
    return MAX_COOKIE_BYTES - this.#serialize(name, '', { ...attributes, secure: true, maxAge: this.#maxTtl }).length
  }

  /** The session's cookies a request brought (parsed by @fastify/cookie). */
  read (cookies: CookieJar | null | undefined): string | undefined {
    return readSessionCookies(cookies, this.cookieName, this.maxChunks)
  }

  /** Sets the token's pieces, or clears the session, and clears every piece it does not write. */
  write (reply: CookieReply, write: CookieWrite): void {
    const { token, log, overrides } = write
    if (!this.#mayCache(reply, write)) return
    let attributes = overrides === undefined ? this.#attributes : { ...this.#attributes, ...overrides }
    // secure: 'auto' over plain HTTP sends no Secure, and browsers drop SameSite=None without it:
    // Lax instead, as @fastify/session does.
    if (attributes.secure === 'auto' && attributes.sameSite === 'none' && reply.request?.protocol !== 'https') attributes = { ...attributes, sameSite: 'lax' }
    const plainRoom = overrides === undefined ? this.#plainRoom : this.#room(this.cookieName, attributes)
    const chunkRoom = overrides === undefined ? this.#chunkRoom : this.#room(chunkName(this.cookieName, 0), attributes)
    const pieces = token === null ? [] : token.length <= plainRoom ? [token] : splitToken(token, chunkRoom)
    if (pieces.length > Math.max(this.maxChunks, 1)) {
      log.error({ cookieName: this.cookieName }, `${PREFIX} session not saved, the cookie attributes chosen with session.options() leave too little room for it`)
      return
    }
    const set = { ...attributes, maxAge: write.maxAge === this.#browserSessionTtl ? undefined : write.maxAge }
    if (pieces.length === 1) {
      reply.setCookie(this.cookieName, pieces[0] as string, set)
    } else {
      pieces.forEach((piece, index) => reply.setCookie(chunkName(this.cookieName, index), piece, set))
      reply.clearCookie(this.cookieName, attributes)
    }
    // Every chunk index this response does not write is cleared, whether or not this request
    // brought it: a concurrent response may have written more chunks than this one.
    const firstStale = pieces.length === 1 ? 0 : pieces.length
    for (let index = firstStale; index < this.maxChunks; index++) reply.clearCookie(chunkName(this.cookieName, index), attributes)
    reply.header('vary', vary.append(String(reply.getHeader('vary') ?? ''), 'Cookie'))
  }

  /**
   * A response a shared cache may keep (Cache-Control public or s-maxage) must not carry one
   * user's session cookie to others. Housekeeping waits for another response; a change the app
   * asked for is written, and the response made private.
   */
  #mayCache (reply: CookieReply, write: CookieWrite): boolean {
    const cacheControl = reply.getHeader('cache-control')
    if (typeof cacheControl !== 'string' || cacheControl.search(SHARED_CACHE) === -1) return true
    if (!write.requested) {
      write.log.debug({ cookieName: this.cookieName }, `${PREFIX} session cookie not re-issued on a response marked for shared caches`)
      return false
    }
    const kept = cacheControl.replace(SHARED_CACHE, '').replace(/^\s*,\s*/, '')
    reply.header('cache-control', kept === '' ? 'private' : `private, ${kept}`)
    write.log.warn({ cookieName: this.cookieName, cacheControl }, `${PREFIX} a response marked for shared caches set the session cookie; made it private`)
    return true
  }
}
