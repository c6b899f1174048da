// Session data to and from Fernet tokens of plain JSON: the format Python session libraries
// (flask_encrypted_cookies_session, sanic-cookies, fastapi_session) read and write.
import secureJson from 'secure-json-parse'
import { type Fernet, type InvalidTokenReason, MAX_CLOCK_SKEW, MultiFernet } from './fernet.js'
import { TokenCache } from './token-cache.js'
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
function weightOf (token: string, verified: VerifiedToken): number {
  return 2 * (token.length + verified.text.length) + 160
}

export class SessionCodec {
  readonly #fernet: MultiFernet
  readonly #ttl: number
  readonly #absoluteLifetime: number | undefined
  readonly #createdKey: string
  readonly #settings: SessionSettings
  readonly #cache: TokenCache<VerifiedToken> | undefined
  /** The cookie it is stored in, and how many chunks that may take; set by the plugin. */
  cookieName = 'session'
  maxChunks = 1

  constructor (options: SessionCodecOptions) {
    this.#fernet = new MultiFernet(options.keys)
    this.#settings = options.settings
    this.#cache = options.cacheSize > 0 ? new TokenCache(options.cacheSize, options.cacheSize * CACHE_BYTES_PER_ENTRY) : undefined
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
    this.#cache?.set(token, verified, weightOf(token, verified))
    return token
  }

  /** The token's plaintext once its MAC verified (or it was verified before), or why not. */
  async #verify (token: string, now: number): Promise<VerifiedToken | InvalidTokenReason | 'not-utf8'> {
    const known = this.#cache?.get(token)
    if (known !== undefined) {
      // The same ttl and skew rules as Fernet's, applied to the remembered timestamp.
      if (known.timestamp + this.#ttl < now) {
        this.#cache?.delete(token)
        return 'expired'
      }
      return now + MAX_CLOCK_SKEW < known.timestamp ? 'future' : known
    }
    let reason: InvalidTokenReason = 'malformed'
    let opened
    try {
      opened = await this.#fernet.decryptDetailed(token, { ttl: this.#ttl, now, onInvalid: (why) => { reason = why } })
    } catch {
      return reason
    }
    try {
      return { text: utf8.decode(opened.plaintext), timestamp: opened.timestamp, keyIndex: opened.keyIndex }
    } catch {
      return 'not-utf8'
    }
  }

  /** The session a token holds, or why it holds none. Never throws for a bad token. */
  async open (token: string, now: number): Promise<Session | SessionFailure> {
    const verified = await this.#verify(token, now)
    if (typeof verified === 'string') return verified
    const session = this.#sessionOf(verified, now)
    // Remembered only while it opens a usable session: nothing is kept of a refused token.
    if (typeof session === 'string') this.#cache?.delete(token)
    else this.#cache?.set(token, verified, weightOf(token, verified))
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
