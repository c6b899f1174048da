// A session's data and what happened to it during one request. Knows nothing of HTTP: the
// plugin asks it, once the reply is ready, whether and what to save.

/** Keys that JSON turns into prototype changes on careless readers; refused as session keys. */
const FORBIDDEN_KEYS = new Set(['__proto__'])

export type SessionRecord = Record<string, unknown>

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

export interface SaveContext {
  /** Unix seconds now. */
  now: number
  /** Re-issue a token at least this old (seconds); undefined turns rolling renewal off. */
  rollingAfter: number | undefined
  /** Key and Unix seconds under which to record creation time, for an absolute lifetime. */
  createdKey: string | undefined
}

// Private state behind symbols, so that only the plugin reaches it and a user's
// `session.get('data')` never collides with an internal name.
export const kDecide = Symbol('decide')
export const kOrigin = Symbol('origin')

function isObjectValue (value: unknown): boolean {
  return typeof value === 'object' && value !== null
}

export class Session<Data extends object = SessionRecord> {
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
  #clearIncoming: boolean
  readonly [kOrigin]: SessionOrigin | undefined

  /**
   * @param data parsed session data, owned by the session from now on
   * @param origin the token it came from; undefined for a new session
   * @param hadBadCookie a cookie came in but could not be used
   */
  constructor (data?: SessionRecord, origin?: SessionOrigin, hadBadCookie = false) {
    this.#data = data ?? {}
    this[kOrigin] = origin
    this.isNew = origin === undefined
    this.#baseline = origin === undefined ? '{}' : undefined
    this.#clearIncoming = hadBadCookie
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
    if (typeof key !== 'string') throw new TypeError('Session keys must be strings')
    if (FORBIDDEN_KEYS.has(key)) throw new TypeError(`"${key}" cannot be a session key`)
    if (value === undefined) {
      this.delete(key)
      return
    }
    // Refuse here what JSON cannot carry, so the error points at the caller, not at the reply.
    let serialised: string | undefined
    try {
      serialised = JSON.stringify(value)
    } catch (error) {
      throw new TypeError(`Session value for "${key}" cannot be stored as JSON: ${(error as Error).message}`)
    }
    if (serialised === undefined) throw new TypeError(`Session value for "${key}" cannot be stored as JSON (a ${typeof value})`)
    this.#willChange()
    Object.defineProperty(this.#data, key, { value, enumerable: true, configurable: true, writable: true })
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
  [kDecide] (context: SaveContext): SaveDecision {
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
      (context.rollingAfter !== undefined && context.now - origin.timestamp >= context.rollingAfter)))
    if (!changed && !renew) return { action: 'keep' }
    if (context.createdKey !== undefined && typeof this.#data[context.createdKey] !== 'number') {
      this.#data[context.createdKey] = context.now
      return { action: 'save', json: JSON.stringify(this.#data) }
    }
    return { action: 'save', json: json ?? JSON.stringify(this.#data) }
  }
}
