// Session data to and from Fernet tokens of plain JSON: the format Python session libraries
// (flask_encrypted_cookies_session, sanic-cookies, fastapi_session) read and write.
import secureJson from 'secure-json-parse'
import { type Fernet, type InvalidTokenReason, MultiFernet } from './fernet.js'
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
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

export class SessionCodec {
  readonly #fernet: MultiFernet
  readonly #ttl: number
  readonly #absoluteLifetime: number | undefined
  readonly #createdKey: string
  readonly #settings: SessionSettings
  /** The cookie it is stored in, set by the plugin. */
  cookieName = 'session'

  constructor (options: SessionCodecOptions) {
    this.#fernet = new MultiFernet(options.keys)
    this.#settings = options.settings
    this.#ttl = options.ttl
    this.#absoluteLifetime = options.absoluteLifetime
    this.#createdKey = options.createdKey
  }

  /** A new, empty session with this codec's settings. */
  fresh (hadBadCookie = false): Session {
    return new Session({ hadBadCookie, settings: this.#settings })
  }

  seal (json: string, now: number): Promise<string> {
    return this.#fernet.encryptAtTime(json, now)
  }

  /** The session a token holds, or why it holds none. Never throws for a bad token. */
  async open (token: string, now: number): Promise<Session | SessionFailure> {
    let reason: InvalidTokenReason = 'malformed'
    let plaintext: Uint8Array
    let timestamp: number
    let keyIndex: number
    try {
      ({ plaintext, timestamp, keyIndex } = await this.#fernet.decryptDetailed(token, {
        ttl: this.#ttl,
        now,
        onInvalid: (why) => { reason = why }
      }))
    } catch {
      return reason
    }
    let text: string
    try {
      text = utf8.decode(plaintext)
    } catch {
      return 'not-utf8'
    }
    let data: unknown
    try {
      data = secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' })
    } catch (error) {
      return /forbidden/i.test((error as Error).message) ? 'forbidden-key' : 'not-json'
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) return 'not-object'
    const record = data as SessionRecord
    const created = record[this.#createdKey]
    if (this.#absoluteLifetime !== undefined && typeof created === 'number' && now - created > this.#absoluteLifetime) {
      return 'lifetime-exceeded'
    }
    return new Session({ data: record, origin: { timestamp, keyIndex }, settings: this.#settings })
  }
}
