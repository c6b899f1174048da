// The session inside the cookie: a Fernet token of the session's plain JSON, the format Python
// session libraries (flask_encrypted_cookies_session, sanic-cookies, fastapi_session) read and
// write. Verified tokens are remembered, so a returning cookie costs no cryptography.
import { LRUCache } from 'lru-cache'
import { type LifetimeRules, type SessionBackend, type SessionFailure, SessionTooLarge, lifetimeProblem, openText, parseSessionJson } from './backend.js'
import { Revocations, type Stamp, storeCall, withGeneration } from './revocation.js'
import { Fernet, MultiFernet, ageProblem, tokenTextLength } from '../fernet/fernet.js'
import { type SaveAction, Session, type SessionRecord, type SessionSettings, kRecord } from '../session.js'
import type { SessionStore } from '../stores/store.js'

export interface CookieBackendOptions {
  /** Raw keys; the first encrypts. */
  keys: Uint8Array[]
  /** Longest token sealed, in characters: a larger session is not saved. */
  maxSessionSize: number
  /**
   * Longest token opened, in characters (at least maxSessionSize): what the cookies can bring,
   * whoever wrote them; a longer one is refused before decoding.
   */
  maxTokenLength: number
  absoluteLifetime: number | undefined
  createdKey: string
  settings: SessionSettings
  /** Verified tokens remembered (0: none); each hit still has its ttl checked. */
  cacheSize: number
  /** Where the revocation records live (the revocationStore option), if anywhere. */
  revocation?: { store: SessionStore, timeout: number, userId: (user: unknown) => string | number | undefined }
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
  // With a revocation store: every logged-in session is checked against its user's record.
  readonly #revocations: Revocations | undefined
  readonly #timeout: number

  constructor (options: CookieBackendOptions) {
    this.#maxSessionSize = options.maxSessionSize
    this.#fernet = new MultiFernet(options.keys.map((key) => new Fernet(key, { maxTokenLength: Math.max(options.maxTokenLength, options.maxSessionSize) })))
    this.#settings = options.settings
    this.#cache = options.cacheSize > 0
      ? new LRUCache({ max: options.cacheSize, maxSize: options.cacheSize * CACHE_BYTES_PER_ENTRY, sizeCalculation: weightOf })
      : undefined
    this.#rules = { settings: options.settings, absoluteLifetime: options.absoluteLifetime, createdKey: options.createdKey }
    const revocation = options.revocation
    this.#timeout = revocation?.timeout ?? 0
    this.#revocations = revocation === undefined
      ? undefined
      : new Revocations({ ...revocation, keys: options.keys, userKey: options.settings.userKey, maxTtl: options.settings.maxTtl })
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

  async save (session: Session, action: SaveAction): Promise<string> {
    if (this.#revocations === undefined) return await this.#seal(action.json, action.timestamp)
    return await this.#sealStamped(session, session[kRecord], action.json, action.timestamp, action.regenerated && !action.carriesOver)
  }

  /**
   * Seals the session under its user's generation. A new authentication reads the generation,
   * and once sealed reads it again: a revoke that resolved meanwhile is adopted, so the login
   * stands. The cookie is not out yet, so adopting is sealing again.
   */
  async #sealStamped (session: Session | undefined, data: SessionRecord, json: string, timestamp: number, authenticated: boolean): Promise<string> {
    const revocations = this.#revocations as Revocations
    const stamping = await revocations.stampFor(session, data, authenticated)
    let token = await this.#seal(withGeneration(json, stamping?.stamp), timestamp)
    if (stamping?.read === true) {
      await revocations.confirm(stamping.stamp, async (newer: Stamp) => {
        token = await this.#seal(withGeneration(json, newer), timestamp)
        return true
      })
    }
    return token
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
    if (this.#revocations === undefined) return await this.#seal(JSON.stringify(data), now)
    return await this.#sealStamped(undefined, data, JSON.stringify(data), now, true)
  }

  async revoke (userId: string | number, except: Session | undefined): Promise<void> {
    const revocations = this.#revocations
    if (revocations === undefined) {
      throw new TypeError('fastify-encrypted-session: cookie sessions can be revoked only with a revocationStore (the option takes any store the store option does); or use the store option')
    }
    const stamp = await storeCall('revoke', this.#timeout, async () => await revocations.revoke(String(userId)))
    if (except === undefined || revocations.stampOf(except)?.user !== stamp.user) return
    revocations.adopt(except, stamp)
    // Re-issued under the new generation by this request's reply.
    except.touch()
  }

  /**
   * The session a remembered token holds, or why it holds none; undefined when the token is not
   * remembered and needs open(). Synchronous, so that a returning cookie costs no promise.
   * With a revocation store, every session needs open(): its user's record is read.
   */
  lookup (token: string, now: number): Session | SessionFailure | undefined {
    if (this.#revocations !== undefined) return undefined
    const known = this.#remembered(token, now)
    if (known === undefined || typeof known === 'string') return known
    const session = this.#sessionOf(known, now, token)
    return typeof session === 'string' ? this.#forget(token, session) : session
  }

  /** A remembered token, with Fernet's own ttl and skew rules applied to its timestamp. */
  #remembered (token: string, now: number): VerifiedToken | SessionFailure | undefined {
    const known = this.#cache?.get(token)
    if (known === undefined) return undefined
    // An expired token never comes back; one from the future may, once the clock catches up.
    const problem = ageProblem(known.timestamp, this.#settings.maxTtl, now)
    if (problem === 'expired') return this.#forget(token, problem)
    return problem ?? known
  }

  #forget (token: string, reason: SessionFailure): SessionFailure {
    this.#cache?.delete(token)
    return reason
  }

  /** The session a token holds, or why it holds none. Rejects only when a revocation store fails. */
  async open (token: string, now: number): Promise<Session | SessionFailure> {
    let verified = this.#remembered(token, now)
    if (typeof verified === 'string') return verified
    if (verified === undefined) {
      // The longest lifetime any session may have; a session's own is checked once it is read.
      const opened = await openText(this.#fernet, token, { ttl: this.#settings.maxTtl, now })
      if (typeof opened === 'string') return opened
      verified = opened
    }
    const session = this.#sessionOf(verified, now, token)
    if (typeof session === 'string') return this.#forget(token, session)
    // Remembered only once it opens a usable session: nothing is kept of a refused token.
    this.#cache?.set(token, verified)
    return this.#revocations === undefined ? session : await this.#checked(session, verified, this.#revocations, token)
  }

  /** The session, unless its user's sessions were revoked since it was made. */
  async #checked (opened: Session, verified: VerifiedToken, revocations: Revocations, token: string): Promise<Session | SessionFailure> {
    const data = opened[kRecord]
    const checked = await revocations.check(data, verified.timestamp)
    if (checked === 'revoked') return checked
    // The generation was taken out of the data: a renewal serialises the data, not the text that came.
    const session = checked.stripped
      ? new Session({ data, origin: { timestamp: verified.timestamp, keyIndex: verified.keyIndex }, settings: this.#settings, token })
      : opened
    revocations.remember(session, checked.stamp)
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
