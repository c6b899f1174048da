// A session's data and what happened to it during one request. Knows nothing of HTTP: the
// plugin asks it, once the reply is ready, whether and what to save.
import secureJson from 'secure-json-parse'

/** Keys that JSON turns into prototype changes on careless readers; refused as session keys. */
const FORBIDDEN_KEYS = new Set(['__proto__'])

export type SessionRecord = Record<string, unknown>

/**
 * The shape of session data. Augment it to type `session.get()` and `session.set()`:
 *
 *     declare module 'fastify-encrypted-session' {
 *       interface SessionData { visits: number, user?: { name: string } }
 *     }
 */
export interface SessionData {
  [key: string]: any
}

/** Where Flask keeps flashed messages: a list of [category, message] pairs. */
export const FLASHES_KEY = '_flashes'

/** Session behaviour chosen at registration. */
export interface SessionSettings {
  /** Key holding the logged-in user; sanic-cookies' AuthSession uses current_user. */
  userKey: string
  /** Keys of an anonymous session that survive login(); every other key is dropped. */
  keepOnLogin: readonly string[]
}

export const DEFAULT_SESSION_SETTINGS: SessionSettings = Object.freeze({ userKey: 'current_user', keepOnLogin: Object.freeze([]) })

export interface SessionInit {
  /** Parsed session data, owned by the session from now on. */
  data?: SessionRecord
  /** The token it came from; absent for a new session. */
  origin?: SessionOrigin
  /**
   * The JSON text the token held. A renewal without change seals this text again, so numbers
   * JavaScript cannot hold exactly (a 64-bit id from Python) pass through untouched.
   */
  originText?: string
  /** A cookie came in but could not be used: clear it unless something is saved over it. */
  hadBadCookie?: boolean
  settings?: SessionSettings
}

export interface FlashMessage<Message = unknown> {
  category: string
  message: Message
}

/** The type of the user that login() stores, from the augmented SessionData when it names one. */
export type SessionUser<Data> = 'current_user' extends keyof Data ? Data['current_user' & keyof Data] : unknown

/** What to do with the cookie once the reply is ready. */
export type SaveDecision =
  | { action: 'keep' }
  | { action: 'clear' }
  | { action: 'save', json: string }

/** What the plugin knows about the token a session came from. */
export interface SessionOrigin {
  /** Unix seconds at which the token was made. */
  timestamp: number
  /** Which configured key opened it; 0 is the current key. */
  keyIndex: number
}

/** The registration's rules for saving, the same for every request. */
export interface SaveRules {
  /** Re-issue a token at least this old (seconds); undefined turns rolling renewal off. */
  rollingAfter: number | undefined
  /** Key under which to record the creation time, for an absolute lifetime; undefined: none. */
  createdKey: string | undefined
}

// Private state behind symbols, so that only the plugin reaches it and a user's
// `session.get('data')` never collides with an internal name.
// Registered symbols, so a Session from the CommonJS build works with the ESM plugin too.
export const kDecide = Symbol.for('fastify-encrypted-session.decide')
export const kOrigin = Symbol.for('fastify-encrypted-session.origin')
const SESSION_BRAND = Symbol.for('fastify-encrypted-session.Session')

function isObjectValue (value: unknown): boolean {
  return typeof value === 'object' && value !== null
}

const SUSPECT_KEY = /"(?:__proto__|constructor)":/

/**
 * Throws for JSON that reading would refuse (a __proto__ key, or constructor.prototype), so
 * that such data is never saved only to drop the whole session on the next request.
 * JSON.stringify writes keys unescaped, so the quick test catches every case.
 */
function checkLoadable (json: string): string {
  if (SUSPECT_KEY.test(json)) {
    try {
      secureJson.parse(json, undefined, { protoAction: 'error', constructorAction: 'error' })
    } catch {
      throw new TypeError('Session data cannot hold a "__proto__" key or a constructor.prototype: reading it back would be refused')
    }
  }
  return json
}

/** Refuses, before anything is stored, what JSON cannot carry: the error then points at the caller. */
function checkEntry (key: unknown, value: unknown): void {
  if (typeof key !== 'string') throw new TypeError('Session keys must be strings')
  if (FORBIDDEN_KEYS.has(key)) throw new TypeError(`"${key}" cannot be a session key`)
  let serialised: string | undefined
  try {
    serialised = JSON.stringify(value)
  } catch (error) {
    throw new TypeError(`Session value for "${key}" cannot be stored as JSON: ${(error as Error).message}`)
  }
  if (serialised === undefined) throw new TypeError(`Session value for "${key}" cannot be stored as JSON (a ${typeof value})`)
  checkLoadable(serialised)
}

export class Session<Data extends object = SessionData> {
  /** True when no valid session cookie came with the request. */
  readonly isNew: boolean
  #data: SessionRecord
  /** Serialised form of the data as it came in; computed on first use. */
  #baseline: string | undefined
  /** Whether the data may differ from the baseline: set() ran, or an object was handed out. */
  #mayHaveChanged = false
  #touched = false
  #destroyed = false
  /** A bad cookie came in: clear it unless something is saved over it. */
  readonly #clearIncoming: boolean
  readonly #settings: SessionSettings
  readonly #originText: string | undefined
  readonly [kOrigin]: SessionOrigin | undefined

  constructor (init: SessionInit = {}) {
    const { data = {}, origin, originText, hadBadCookie = false, settings = DEFAULT_SESSION_SETTINGS } = init
    this.#originText = originText
    this.#data = data
    this[kOrigin] = origin
    this.isNew = origin === undefined
    this.#baseline = origin === undefined ? '{}' : undefined
    this.#clearIncoming = hadBadCookie
    this.#settings = settings
  }

  get [SESSION_BRAND] (): true { return true }

  static [Symbol.hasInstance] (value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[SESSION_BRAND] === true
  }

  #willChange (): void {
    this.#baseline ??= JSON.stringify(this.#data)
    this.#mayHaveChanged = true
  }

  get<Key extends keyof Data & string> (key: Key): Data[Key] | undefined {
    if (!Object.hasOwn(this.#data, key)) return undefined
    const value = this.#data[key]
    // The caller may change a nested value in place; that counts as a change.
    if (isObjectValue(value)) this.#willChange()
    return value as Data[Key]
  }

  set<Key extends keyof Data & string> (key: Key, value: Data[Key]): void {
    if (value === undefined) {
      this.delete(key)
      return
    }
    checkEntry(key, value)
    this.#willChange()
    this.#data[key] = value
  }

  has (key: keyof Data & string): boolean {
    return Object.hasOwn(this.#data, key)
  }

  delete (key: keyof Data & string): void {
    if (!Object.hasOwn(this.#data, key)) return
    this.#willChange()
    delete this.#data[key]
  }

  /** Removes every key; an empty session is not stored, so its cookie is cleared. */
  clear (): void {
    this.#willChange()
    this.#data = {}
  }

  /** Empties the session and expires its cookie. */
  destroy (): void {
    this.clear()
    this.#destroyed = true
  }

  /**
   * Stores the user under the user key (default current_user) in a session that keeps none of
   * the anonymous keys except those named by keepOnLogin, and issues a fresh token: on a change
   * of privilege nothing from before should carry over unasked (OWASP session management).
   */
  login (user: SessionUser<Data>): void {
    const { userKey, keepOnLogin } = this.#settings
    checkEntry(userKey, user)
    const kept: SessionRecord = {}
    for (const key of keepOnLogin) {
      if (Object.hasOwn(this.#data, key)) kept[key] = this.#data[key]
    }
    this.#willChange()
    this.#data = kept
    this.#data[userKey] = user
    this.#touched = true
  }

  /** Empties the session, so its cookie is cleared. */
  logout (): void {
    this.clear()
  }

  /** The logged-in user, or undefined. */
  get user (): SessionUser<Data> | undefined {
    return this.get(this.#settings.userKey as keyof Data & string) as SessionUser<Data> | undefined
  }

  /** Adds a message for a later request, stored as Flask stores flash() messages. */
  flash (category: string, message: unknown): void {
    if (typeof category !== 'string') throw new TypeError('A flash category must be a string')
    checkEntry(FLASHES_KEY, message)
    const stored = this.#data[FLASHES_KEY]
    const list = Array.isArray(stored) ? stored : []
    this.#willChange()
    list.push([category, message])
    this.#data[FLASHES_KEY] = list
  }

  /**
   * Returns the flashed messages (of one category, when given) and removes them from the
   * session; the others stay for a later call. Entries that are not [category, message] pairs
   * (a hand-edited or foreign session) are dropped.
   */
  flashes<Message = string> (category?: string): Array<FlashMessage<Message>> {
    const stored = this.#data[FLASHES_KEY]
    if (stored === undefined) return []
    const taken: Array<FlashMessage<Message>> = []
    const kept: unknown[] = []
    for (const entry of Array.isArray(stored) ? stored as unknown[] : []) {
      if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string') continue
      if (category === undefined || entry[0] === category) taken.push({ category: entry[0], message: entry[1] as Message })
      else kept.push(entry)
    }
    this.#willChange()
    if (kept.length === 0) delete this.#data[FLASHES_KEY]
    else this.#data[FLASHES_KEY] = kept
    return taken
  }

  /** Re-issues the cookie (a fresh timestamp, so a fresh ttl) even if nothing changed. */
  touch (): void {
    this.#touched = true
  }

  /** A plain copy of the data, as it would be stored. */
  data (): Data {
    return JSON.parse(JSON.stringify(this.#data)) as Data
  }

  /** Whether the data now differs from what came in, compared in serialised form. */
  get changed (): boolean {
    return this.#destroyed || (this.#mayHaveChanged && JSON.stringify(this.#data) !== this.#baseline)
  }

  get destroyed (): boolean {
    return this.#destroyed
  }

  /** @internal What the plugin should do with the cookie. */
  [kDecide] (now: number, rules: SaveRules): SaveDecision {
    // An empty session is not stored: its cookie, if one came, is cleared (as Flask does).
    if (Object.keys(this.#data).length === 0) {
      return this.isNew && !this.#clearIncoming ? { action: 'keep' } : { action: 'clear' }
    }
    const json = this.#mayHaveChanged ? JSON.stringify(this.#data) : undefined
    const changed = json !== undefined && json !== this.#baseline
    const origin = this[kOrigin]
    const renew = this.#touched || (origin !== undefined && (
      // Opened with an old key: re-issue under the current one.
      origin.keyIndex !== 0 ||
      (rules.rollingAfter !== undefined && now - origin.timestamp >= rules.rollingAfter)))
    if (!changed && !renew) return { action: 'keep' }
    if (rules.createdKey !== undefined && typeof this.#data[rules.createdKey] !== 'number') {
      this.#data[rules.createdKey] = now
      return { action: 'save', json: checkLoadable(JSON.stringify(this.#data)) }
    }
    // Unchanged, so renewing: the text that came, as it came. A renewal needs an origin, and
    // a session with an origin has its text.
    return { action: 'save', json: changed ? checkLoadable(json) : this.#originText as string }
  }
}
