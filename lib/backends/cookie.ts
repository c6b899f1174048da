// The session inside the cookie: a Fernet token of the session's plain JSON, the format Python
// session libraries (flask_encrypted_cookies_session, sanic-cookies, fastapi_session) read and
// write. Verified tokens are remembered, so a returning cookie costs no cryptography.
import { LRUCache } from 'lru-cache'
import { type LifetimeRules, type SessionBackend, type SessionFailure, SessionTooLarge, lifetimeProblem, openText, parseSessionJson } from './backend.js'
import { Fernet, MultiFernet, ageProblem, tokenTextLength } from '../fernet/fernet.js'
import { type SaveAction, Session, type SessionRecord, type SessionSettings } from '../session.js'

export interface CookieBackendOptions {
  /** Raw keys; the first encrypts. */
  keys: Uint8Array[]
  /** Longest token, in characters: sealing refuses to exceed it, opening refuses before decoding. */
  maxSessionSize: number
  absoluteLifetime: number | undefined
  createdKey: string
  settings: SessionSettings
  /** Verified tokens remembered (0: none); each hit still has its ttl checked. */
  cacheSize: number
}

/** A token whose MAC verified, with what it holds. */
interface VerifiedToken {
  text: string
  timestamp: number
  keyIndex: number
}

const textEncoder = new TextEncoder()

/**
 * Memory allowed per entry of cacheSize, on average: a typical session (a 228-character token
 * and 100 characters of JSON) weighs under 1 KB, so large sessions take several entries' room
 * and the cache never holds more than cacheSize KB.
 */
export const CACHE_BYTES_PER_ENTRY = 1024

/** Bytes an entry holds: both strings at two bytes a character, plus the objects around them. */
function weightOf (verified: VerifiedToken, token: string): number {
  return 2 * (token.length + verified.text.length) + 160
}

export class CookieBackend implements SessionBackend {
  readonly #fernet: MultiFernet
  readonly #maxSessionSize: number
  readonly #rules: LifetimeRules
  readonly #settings: SessionSettings
  // Verified tokens, least recently used first out, bounded by count and by memory.
  readonly #cache: LRUCache<string, VerifiedToken> | undefined

  constructor (options: CookieBackendOptions) {
    this.#maxSessionSize = options.maxSessionSize
    this.#fernet = new MultiFernet(options.keys.map((key) => new Fernet(key, { maxTokenLength: options.maxSessionSize })))
    this.#settings = options.settings
    this.#cache = options.cacheSize > 0
      ? new LRUCache({ max: options.cacheSize, maxSize: options.cacheSize * CACHE_BYTES_PER_ENTRY, sizeCalculation: weightOf })
      : undefined
    this.#rules = { settings: options.settings, absoluteLifetime: options.absoluteLifetime, createdKey: options.createdKey }
  }

  fresh (hadBadCookie = false): Session {
    return new Session({ hadBadCookie, settings: this.#settings })
  }

  async #seal (json: string, timestamp: number): Promise<string> {
    // Checked before any cryptography: a session too large for its cookies is not sealed.
    const size = tokenTextLength(textEncoder.encode(json).length)
    if (size > this.#maxSessionSize) throw new SessionTooLarge(size, this.#maxSessionSize)
    const token = await this.#fernet.encryptAtTime(json, timestamp)
    // The next request brings this token back: remember it as verified.
    this.#cache?.set(token, { text: json, timestamp, keyIndex: 0 })
    return token
  }

  async save (_session: Session, action: SaveAction): Promise<string> {
    return await this.#seal(action.json, action.timestamp)
  }

  end (): undefined {
    return undefined
  }

  /** A session in the cookie keeps its id in its data. */
  sessionId (): undefined {
    return undefined
  }

  /** The cookie is the only copy: the session's own last saved text stands. */
  async reload (): Promise<undefined> {
    return undefined
  }

  persisted (): undefined {
    return undefined
  }

  async encode (data: SessionRecord, now: number): Promise<string> {
    return await this.#seal(JSON.stringify(data), now)
  }

  async revoke (): Promise<number> {
    throw new TypeError('fastify-encrypted-session: sessions kept in cookies cannot be ended one user at a time; use the store option (or rotate the key to end them all)')
  }

  /**
   * The session a remembered token holds, or why it holds none; undefined when the token is not
   * remembered and needs open(). Synchronous, so that a returning cookie costs no promise.
   */
  lookup (token: string, now: number): Session | SessionFailure | undefined {
    const known = this.#cache?.get(token)
    if (known === undefined) return undefined
    // Fernet's own ttl and skew rules, applied to the remembered timestamp. An expired token
    // never comes back; one from the future may, once the clock catches up.
    const problem = ageProblem(known.timestamp, this.#settings.maxTtl, now)
    if (problem === 'expired') return this.#forget(token, problem)
    if (problem !== undefined) return problem
    const session = this.#sessionOf(known, now, token)
    return typeof session === 'string' ? this.#forget(token, session) : session
  }

  #forget (token: string, reason: SessionFailure): SessionFailure {
    this.#cache?.delete(token)
    return reason
  }

  /** The session a token holds, or why it holds none. Never rejects. */
  async open (token: string, now: number): Promise<Session | SessionFailure> {
    const known = this.lookup(token, now)
    if (known !== undefined) return known
    // The longest lifetime any session may have; a session's own is checked once it is read.
    const verified = await openText(this.#fernet, token, { ttl: this.#settings.maxTtl, now })
    if (typeof verified === 'string') return verified
    const session = this.#sessionOf(verified, now, token)
    // Remembered only once it opens a usable session: nothing is kept of a refused token.
    if (typeof session !== 'string') this.#cache?.set(token, verified)
    return session
  }

  #sessionOf (verified: VerifiedToken, now: number, token: string): Session | SessionFailure {
    const data = parseSessionJson(verified.text)
    if (typeof data === 'string') return data
    const over = lifetimeProblem(data, verified.timestamp, now, this.#rules)
    if (over !== undefined) return over
    return new Session({
      data,
      origin: { timestamp: verified.timestamp, keyIndex: verified.keyIndex },
      originText: verified.text,
      settings: this.#settings,
      token
    })
  }
}
