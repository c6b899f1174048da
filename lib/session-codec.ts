// Session data to and from Fernet tokens of plain JSON: the format Python session libraries
// (flask_encrypted_cookies_session, sanic-cookies, fastapi_session) read and write.
import secureJson from 'secure-json-parse'
import { type Fernet, type InvalidTokenReason, MultiFernet, ageProblem } from './fernet.js'
import { LRUCache } from 'lru-cache'
import { Session, type SessionRecord, type SessionSettings } from './session.js'

/** Why a cookie gave a fresh session instead of its data; logged at debug level. */
export type SessionFailure =
  | InvalidTokenReason
  | 'not-utf8'
  | 'not-json'
  | 'forbidden-key' // __proto__ or constructor.prototype, which could pollute prototypes
  | 'not-object'
  | 'lifetime-exceeded'

export interface SessionCodecOptions {
  /** Fernet instances built with maxTokenLength as their bound; the first encrypts. */
  keys: Fernet[]
  ttl: number
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

const utf8 = new TextDecoder('utf-8', { fatal: true })

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

export class SessionCodec {
  readonly #fernet: MultiFernet
  readonly #ttl: number
  readonly #absoluteLifetime: number | undefined
  readonly #createdKey: string
  readonly #settings: SessionSettings
  // Verified tokens, least recently used first out, bounded by count and by memory.
  readonly #cache: LRUCache<string, VerifiedToken> | undefined

  constructor (options: SessionCodecOptions) {
    this.#fernet = new MultiFernet(options.keys)
    this.#settings = options.settings
    this.#cache = options.cacheSize > 0
      ? new LRUCache({ max: options.cacheSize, maxSize: options.cacheSize * CACHE_BYTES_PER_ENTRY, sizeCalculation: weightOf })
      : undefined
    this.#ttl = options.ttl
    this.#absoluteLifetime = options.absoluteLifetime
    this.#createdKey = options.createdKey
  }

  /** A new, empty session with this codec's settings. */
  fresh (hadBadCookie = false): Session {
    return new Session({ hadBadCookie, settings: this.#settings })
  }

  async seal (json: string, now: number): Promise<string> {
    const token = await this.#fernet.encryptAtTime(json, now)
    // The next request brings this token back: remember it as verified.
    const verified = { text: json, timestamp: now, keyIndex: 0 }
    this.#cache?.set(token, verified)
    return token
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
    const problem = ageProblem(known.timestamp, this.#ttl, now)
    if (problem === 'expired') return this.#forget(token, problem)
    if (problem !== undefined) return problem
    const session = this.#sessionOf(known, now)
    return typeof session === 'string' ? this.#forget(token, session) : session
  }

  #forget (token: string, reason: SessionFailure): SessionFailure {
    this.#cache?.delete(token)
    return reason
  }

  /** The session a token holds, or why it holds none. Never throws for a bad token. */
  async open (token: string, now: number): Promise<Session | SessionFailure> {
    const known = this.lookup(token, now)
    if (known !== undefined) return known
    let reason: InvalidTokenReason = 'malformed'
    let opened
    try {
      opened = await this.#fernet.decryptDetailed(token, { ttl: this.#ttl, now, onInvalid: (why) => { reason = why } })
    } catch {
      return reason
    }
    let verified: VerifiedToken
    try {
      verified = { text: utf8.decode(opened.plaintext), timestamp: opened.timestamp, keyIndex: opened.keyIndex }
    } catch {
      return 'not-utf8'
    }
    const session = this.#sessionOf(verified, now)
    // Remembered only once it opens a usable session: nothing is kept of a refused token.
    if (typeof session !== 'string') this.#cache?.set(token, verified)
    return session
  }

  #sessionOf (verified: VerifiedToken, now: number): Session | SessionFailure {
    let data: unknown
    try {
      data = secureJson.parse(verified.text, undefined, { protoAction: 'error', constructorAction: 'error' })
    } catch (error) {
      return /forbidden/i.test((error as Error).message) ? 'forbidden-key' : 'not-json'
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) return 'not-object'
    const record = data as SessionRecord
    const created = record[this.#createdKey]
    if (this.#absoluteLifetime !== undefined && typeof created === 'number' && now - created > this.#absoluteLifetime) {
      return 'lifetime-exceeded'
    }
    return new Session({
      data: record,
      origin: { timestamp: verified.timestamp, keyIndex: verified.keyIndex },
      originText: verified.text,
      settings: this.#settings
    })
  }
}
