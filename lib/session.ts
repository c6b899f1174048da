// A session's data and what happened to it during one request. Knows nothing of HTTP: the
// plugin asks it, once the reply is ready, whether and what to save.
import secureJson from 'secure-json-parse'
import { base64 } from './fernet/base64.js'

export type SessionRecord = Record<string, unknown>

/**
 * The shape of session data. Augment it to type `session.get()` and `session.set()`:
 *
 *     declare module 'fastify-encrypted-session' {
 *       interface SessionData { visits: number, profile?: { name: string } }
 *     }
 */
export interface SessionData {
  [key: string]: any
}

/** Where Flask keeps flashed messages: a list of [category, message] pairs. */
export const FLASHES_KEY = '_flashes'
/** Where a session that chose its own lifetime with options({ maxAge }) keeps it, in seconds. */
export const TTL_KEY = '_ttl'

/** What options() accepts that the session itself acts on; the plugin checks the rest. */
export interface CookieOverrides {
  /** Seconds the session lives, enforced on the server too; at most the registration's maxTtl. */
  maxAge?: number
  /** The same as a date: the session lives until then. */
  expires?: Date
  [attribute: string]: unknown
}

/** Session behaviour chosen at registration. */
export interface SessionSettings {
  /** Key holding the logged-in user; sanic-cookies' AuthSession uses current_user. */
  userKey: string
  /** Keys of an anonymous session that survive login(); every other key is dropped. */
  keepOnLogin: readonly string[]
  /** Seconds a session lives unless it chose otherwise. */
  ttl: number
  /** The longest lifetime a session may choose with options(); ttl when not raised. */
  maxTtl: number
  /**
   * Checks the cookie attributes given to options() and returns those to apply to this
   * response's cookie (maxAge and expires excluded: the session turns them into its lifetime).
   * Throws a TypeError for a bad value of a known attribute; unknown keys are dropped.
   */
  cookieAttributes: (given: Record<string, unknown>) => Record<string, unknown>
  /** The registration's cookie attributes, as session.cookie shows them. */
  cookie?: Readonly<Record<string, unknown>>
  /** The cookie carries no Max-Age unless the session chose a lifetime of its own. */
  browserSession?: boolean
  /** What save(), reload(), an awaited destroy() or regenerate() and sessionId do through the backend. */
  link?: SessionLink
}

/**
 * A session's way to its backend, for the members that act at once (@fastify/session's save(),
 * reload(), destroy(callback), regenerate(callback)) rather than when the reply is sent.
 */
export interface SessionLink {
  /** Saves (or ends) the session now, as the reply would; what the cookie becomes is kept for the reply. */
  flush: (session: Session<any>) => Promise<void>
  /** The session's data as last saved; null when nothing is saved any more. */
  reload: (session: Session<any>) => Promise<string | null | undefined>
  /** The session's id when the backend keeps one (a store); undefined: kept in the data. */
  sessionId: (session: Session<any>, renewed: boolean) => string | undefined
}

export const DEFAULT_SESSION_SETTINGS: SessionSettings = Object.freeze({
  userKey: 'current_user',
  keepOnLogin: Object.freeze([]),
  ttl: 86_400,
  maxTtl: 86_400,
  cookieAttributes: () => ({})
})

/**
 * Where a session kept in the cookie keeps its id once the app asks for session.sessionId: in the
 * JSON, so that it lasts as long as the session (and Python sees it under this key).
 */
export const SESSION_ID_KEY = '_sid'

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
  /** The cookie's token the session was opened from (session.encryptedSessionId). */
  token?: string
}

/** Called once: with null when done, or with the error (a store's failure). */
export type SessionCallback = (error: Error | null) => void

/** What the cookie becomes once a session was saved before the reply: sent with the reply. */
export interface PendingCookie {
  token: string
  /** Seconds the saved session lives. */
  ttl: number
}

export interface FlashMessage<Message = unknown> {
  category: string
  message: Message
}

/** The type of the user that login() stores, from the augmented SessionData when it names one. */
export type SessionUser<Data> = 'current_user' extends keyof Data ? Data['current_user' & keyof Data] : unknown

/**
 * The data keys an augmented SessionData names, as optional properties (session.visits), beside
 * the Session's own members; the index signature of the default SessionData is left out, so
 * that without an augmentation get() and set() stay the typed way in.
 */
export type SessionProperties<Data extends object> = {
  [Key in keyof Data as string extends Key ? never : Key extends keyof Session<Data> ? never : Key]?: Data[Key]
}

/** The keys an augmented SessionData declares, its default index signature left out. */
type DeclaredKeys<Data> = keyof { [Key in keyof Data as string extends Key ? never : number extends Key ? never : Key]: 0 }

/**
 * SessionData keys that a member of the Session (user, get, data, ...) shadows: `session.user`
 * is the logged-in user, never a data key named `user`.
 */
export type ShadowedKeys<Data extends object> = Extract<DeclaredKeys<Data>, keyof Session<Data>>

/** What to do with the cookie once the reply is ready. */
export type SaveDecision =
  | { action: 'keep' }
  /**
   * requested: the app emptied the session; otherwise only a refused cookie is cleared.
   * keysDeleted: it was emptied by deleting keys, not ended (clear, destroy, regenerate): a
   * store applies the deletions over what other requests wrote meanwhile.
   */
  | { action: 'clear', requested: boolean, keysDeleted: boolean }
  | SaveAction

export interface SaveAction {
  action: 'save'
  /** The session as JSON: what a cookie token holds. */
  json: string
  /** The token's time: now, or the old token's own when only a rotated key re-issues it. */
  timestamp: number
  /** The session's life starts again (a change, a renewal, touch()): false for a re-issue under a rotated key only. */
  fresh: boolean
  /** Seconds the saved session lives. */
  ttl: number
  /** The app changed the data, regenerated, touched or chose options: not housekeeping. */
  requested: boolean
  /** Whether the data differs from what came in. */
  changed: boolean
  /** regenerate() or login() ran: a store gives the session a new id. */
  regenerated: boolean
  /**
   * The new session holds what regenerate() kept from the old one (not through login(), a new
   * authentication): in a store it must not outlive the old session if that ended meanwhile.
   */
  carriesOver: boolean
}

/** What the plugin knows about the token a session came from. */
export interface SessionOrigin {
  /** Unix seconds at which the token was made. */
  timestamp: number
  /** Which configured key opened it; 0 is the current key. */
  keyIndex: number
}

/** The registration's rules for saving, the same for every request. */
export interface SaveRules {
  /** true: renew at a quarter of the session's ttl; a number: at that many seconds of the default ttl, scaled; false: never. */
  rolling: boolean | number
  /** Key under which to record the creation time, for an absolute lifetime; undefined: none. */
  createdKey: string | undefined
}

interface SessionState {
  data: SessionRecord
  /** Serialised form of the data as it came in; computed on first use. */
  baseline: string | undefined
  /** Whether the data may differ from the baseline: set() ran, or an object was handed out. */
  mayHaveChanged: boolean
  touched: boolean
  regenerated: boolean
  /** Keys regenerate() kept from the session it replaced (none after login() or destroy()). */
  kept: string[]
  destroyed: boolean
  /** clear() ran: the session was ended, not only emptied key by key. */
  cleared: boolean
  /** A bad cookie came in: clear it unless something is saved over it. */
  readonly clearIncoming: boolean
  readonly settings: SessionSettings
  /** The text and token time of what the session was opened from, or last saved as. */
  originText: string | undefined
  origin: SessionOrigin | undefined
  /** Cookie attributes options() chose for this response. */
  cookieAttributes: Record<string, unknown> | undefined
  /** The cookie's token: the one the request brought, or the one save() made. */
  token: string | undefined
  /** A token save() made before the reply, for the reply's cookie. */
  pending: PendingCookie | undefined
}

// Private state behind symbols, so that only the plugin reaches it and a user's
// `session.get('data')` never collides with an internal name. Registered symbols, so a
// Session from the CommonJS build works with the ESM plugin too.
const kState = Symbol.for('fastify-encrypted-session.state')
export const kDecide = Symbol.for('fastify-encrypted-session.decide')
export const kRecord = Symbol.for('fastify-encrypted-session.record')
export const kCookieAttributes = Symbol.for('fastify-encrypted-session.cookieAttributes')
export const kRebase = Symbol.for('fastify-encrypted-session.rebase')
export const kPending = Symbol.for('fastify-encrypted-session.pending')
const SESSION_BRAND = Symbol.for('fastify-encrypted-session.Session')

function isObjectValue (value: unknown): value is object {
  return typeof value === 'object' && value !== null
}

/**
 * Whether a stored user means "nobody", by Python's truthiness: sanic-cookies and Flask apps
 * sharing the session log out with `None` and test `if session.get('current_user')`, so
 * null, false, 0, '' and empty objects and arrays are nobody here too.
 */
export function isNobody (user: unknown): boolean {
  if (!isObjectValue(user)) return !(user as boolean)
  return Array.isArray(user) ? user.length === 0 : Object.keys(user).length === 0
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

/**
 * Refuses, before anything is stored, what JSON cannot carry or reading would refuse: the
 * error then points at the caller. The entry is checked with its key, as it will be saved, so
 * that `set('constructor', { prototype: {} })` is caught too.
 */
function checkEntry (key: unknown, value: unknown): void {
  if (typeof key !== 'string') throw new TypeError('Session keys must be strings')
  if (key === '__proto__') throw new TypeError('"__proto__" cannot be a session key')
  let serialised: string | undefined
  try {
    serialised = JSON.stringify(value)
  } catch (error) {
    throw new TypeError(`Session value for "${key}" cannot be stored as JSON: ${(error as Error).message}`)
  }
  if (serialised === undefined) throw new TypeError(`Session value for "${key}" cannot be stored as JSON (a ${typeof value})`)
  checkLoadable(`{${JSON.stringify(key)}:${serialised}}`)
}

/** A lifetime a session chose, if it is one the registration allows; else the default ttl. */
export function lifetimeOf (data: SessionRecord, settings: Pick<SessionSettings, 'ttl' | 'maxTtl'>): number {
  const chosen = data[TTL_KEY]
  return Number.isSafeInteger(chosen) && (chosen as number) >= 1 && (chosen as number) <= settings.maxTtl ? chosen as number : settings.ttl
}

/** Seconds after which a token of a session with this lifetime is re-issued, or undefined. */
function rollingAfter (rolling: boolean | number, ttl: number, settings: SessionSettings): number | undefined {
  if (rolling === false) return undefined
  if (rolling === true) return Math.floor(ttl / 4)
  // The same share of a chosen lifetime as of the default one.
  return Math.floor(rolling * ttl / settings.ttl)
}

const ID_SHAPE = /^[A-Za-z0-9_-]{22}$/

/** 128 bits from crypto.getRandomValues, as 22 characters of url-safe base64. */
function newSessionId (): string {
  return base64.encode(globalThis.crypto.getRandomValues(new Uint8Array(16))).slice(0, 22)
}

/** A session made outside a registration: nothing to save to, its data is all there is. */
const OWN_LINK: SessionLink = {
  flush: async () => {},
  reload: async () => undefined,
  sessionId: () => undefined
}

/**
 * A promise whose work starts when something waits for it (await, then, catch, finally). A bare
 * `session.destroy()` thus starts no store call whose failure nobody would see: the reply does
 * the work, and turns a failure into its 503.
 */
class OnDemand extends Promise<void> {
  static override get [Symbol.species] (): PromiseConstructor { return Promise }
  #work: (() => Promise<void>) | undefined
  #started: Promise<void> | undefined

  constructor (work: () => Promise<void>) {
    super(() => {})
    this.#work = work
  }

  override then<A = void, B = never> (onFulfilled?: ((value: void) => A | PromiseLike<A>) | null, onRejected?: ((reason: any) => B | PromiseLike<B>) | null): Promise<A | B> {
    this.#started ??= (this.#work as () => Promise<void>)()
    return this.#started.then(onFulfilled, onRejected)
  }
}

/**
 * session.cookie: the session cookie's lifetime and attributes, in @fastify/session's terms
 * (milliseconds, null for a cookie that ends with the browser). Setting a lifetime or an
 * attribute is session.options() for this session.
 */
export class SessionCookie {
  readonly #session: Session<any>

  constructor (session: Session<any>) {
    this.#session = session
  }

  #attribute (name: string): unknown {
    const state = this.#session[kState]
    return state.cookieAttributes?.[name] ?? state.settings.cookie?.[name]
  }

  /** Milliseconds the session lives from its cookie's issue; null for a browser-session cookie. */
  get originalMaxAge (): number | null {
    const { data, settings } = this.#session[kState]
    if (settings.browserSession === true && !Object.hasOwn(data, TTL_KEY)) return null
    return lifetimeOf(data, settings) * 1000
  }

  set originalMaxAge (ms: number | null) {
    this.maxAge = ms
  }

  /** When the cookie expires; null for a browser-session cookie. */
  get expires (): Date | null {
    const original = this.originalMaxAge
    if (original === null) return null
    const { origin, touched, regenerated } = this.#session[kState]
    // A cookie the reply re-issues lives from now.
    const issued = origin === undefined || touched || regenerated ? Math.floor(Date.now() / 1000) : origin.timestamp
    return new Date(issued * 1000 + original)
  }

  set expires (date: Date | null) {
    if (date !== null) this.#session.options({ expires: date })
  }

  /** Milliseconds left until the cookie expires; null for a browser-session cookie. */
  get maxAge (): number | null {
    const expires = this.expires
    return expires === null ? null : expires.getTime() - Date.now()
  }

  set maxAge (ms: number | null) {
    if (ms === null) return
    if (typeof ms !== 'number' || !Number.isFinite(ms)) throw new TypeError('session.cookie.maxAge must be a number of milliseconds')
    this.#session.options({ maxAge: Math.ceil(ms / 1000) })
  }

  get path (): string { return this.#attribute('path') as string ?? '/' }
  set path (path: string) { this.#session.options({ path }) }
  get domain (): string | null { return this.#attribute('domain') as string ?? null }
  set domain (domain: string) { this.#session.options({ domain }) }
  get secure (): boolean | 'auto' { return this.#attribute('secure') as boolean | 'auto' ?? true }
  set secure (secure: boolean | 'auto') { this.#session.options({ secure }) }
  get sameSite (): string | boolean | null { return this.#attribute('sameSite') as string | boolean ?? null }
  set sameSite (sameSite: 'lax' | 'strict' | 'none' | boolean) { this.#session.options({ sameSite }) }
  get httpOnly (): boolean { return this.#attribute('httpOnly') as boolean ?? true }
  set httpOnly (httpOnly: boolean) { this.#session.options({ httpOnly }) }
  get partitioned (): boolean | undefined { return this.#attribute('partitioned') as boolean | undefined }
  set partitioned (partitioned: boolean) { this.#session.options({ partitioned }) }
  get priority (): string | undefined { return this.#attribute('priority') as string | undefined }
  set priority (priority: 'low' | 'medium' | 'high') { this.#session.options({ priority }) }

  toJSON (): Record<string, unknown> {
    return { expires: this.expires, originalMaxAge: this.originalMaxAge, path: this.path, domain: this.domain, secure: this.secure, sameSite: this.sameSite, httpOnly: this.httpOnly, partitioned: this.partitioned, priority: this.priority }
  }
}

// The Session's own members, which property access never treats as data keys.
const API = new Set<string | symbol>()

/** Property access: data keys read and write the data as get()/set() do; members stay members. */
const propertyAccess: ProxyHandler<Session> = {
  get (target, property, receiver) {
    if (API.has(property) || typeof property === 'symbol') return Reflect.get(target, property, receiver)
    return target.get.call(receiver, property)
  },
  set (target, property, value, receiver) {
    if (typeof property === 'symbol') return Reflect.set(target, property, value)
    if (API.has(property)) {
      const hint = property === 'user' ? "session.login(user) or session.set('user', value)" : `session.set('${property}', value)`
      throw new TypeError(`"${property}" is part of the session's API and cannot be assigned; use ${hint}`)
    }
    target.set.call(receiver, property, value)
    return true
  },
  deleteProperty (target, property) {
    if (typeof property === 'symbol') return Reflect.deleteProperty(target, property)
    if (API.has(property)) throw new TypeError(`"${property}" is part of the session's API and cannot be deleted`)
    target.delete(property)
    return true
  },
  has (target, property) {
    return API.has(property) || typeof property === 'symbol' ? Reflect.has(target, property) : Object.hasOwn(target[kState].data, property)
  },
  ownKeys (target) {
    return Object.keys(target[kState].data)
  },
  getOwnPropertyDescriptor (target, property) {
    if (typeof property === 'symbol') return Reflect.getOwnPropertyDescriptor(target, property)
    const { data } = target[kState]
    if (!Object.hasOwn(data, property)) return undefined
    return { value: data[property], writable: true, enumerable: true, configurable: true }
  },
  defineProperty (target, property, descriptor) {
    if (typeof property === 'symbol') return Reflect.defineProperty(target, property, descriptor)
    if (!('value' in descriptor) || API.has(property)) {
      throw new TypeError(`Session property "${property}" can only be assigned a value`)
    }
    target.set(property, descriptor.value)
    return true
  }
}

export class Session<Data extends object = SessionData> {
  declare readonly [kState]: SessionState

  constructor (init: SessionInit = {}) {
    const { data = {}, origin, originText, hadBadCookie = false, settings = DEFAULT_SESSION_SETTINGS, token } = init
    const state: SessionState = {
      data,
      baseline: origin === undefined ? '{}' : undefined,
      mayHaveChanged: false,
      touched: false,
      regenerated: false,
      kept: [],
      destroyed: false,
      cleared: false,
      clearIncoming: hadBadCookie,
      settings,
      originText,
      origin,
      cookieAttributes: undefined,
      token,
      pending: undefined
    }
    // Not enumerable: console.log(session) shows no internals.
    Object.defineProperty(this, kState, { value: state, writable: false, enumerable: false, configurable: true })
    // Data keys also as properties (session.cart = x), as @fastify/session and secure-session
    // allow and as @fastify/csrf-protection and passport use it.
    return new Proxy(this, propertyAccess as unknown as ProxyHandler<this>)
  }

  get [SESSION_BRAND] (): true { return true }

  static [Symbol.hasInstance] (value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[SESSION_BRAND] === true
  }

  /** True when no valid session cookie came with the request. */
  get isNew (): boolean {
    return this[kState].origin === undefined
  }

  get<Key extends keyof Data & string> (key: Key): Data[Key] | undefined {
    const state = this[kState]
    if (!Object.hasOwn(state.data, key)) return undefined
    const value = state.data[key]
    // The caller may change a nested value in place; that counts as a change.
    if (isObjectValue(value)) willChange(state)
    return value as Data[Key]
  }

  set<Key extends keyof Data & string> (key: Key, value: Data[Key]): void {
    if (value === undefined) {
      this.delete(key)
      return
    }
    checkEntry(key, value)
    const state = this[kState]
    willChange(state)
    state.data[key] = value
  }

  has (key: keyof Data & string): boolean {
    return Object.hasOwn(this[kState].data, key)
  }

  delete (key: keyof Data & string): void {
    if (typeof key !== 'string') {
      throw new TypeError('session.delete(key) removes one key; to end the session use session.destroy()')
    }
    const state = this[kState]
    if (!Object.hasOwn(state.data, key)) return
    willChange(state)
    delete state.data[key]
  }

  /** Removes every key; an empty session is not stored, so its cookie is cleared. */
  clear (): void {
    const state = this[kState]
    willChange(state)
    state.data = {}
    state.cleared = true
  }

  /**
   * Empties the session and expires its cookie (and, in a store, deletes its record). Whatever
   * is set afterwards (a flash message after logout) starts a new session: a new token, and in a
   * store a new id, so the ended one stays ended. Awaited, or given a callback, the record is
   * deleted at once and a store failure rejects (or goes to the callback); otherwise the reply
   * does it.
   */
  destroy (callback?: SessionCallback): Promise<void> {
    this.clear()
    const state = this[kState]
    state.destroyed = true
    state.regenerated = true
    state.kept = []
    return act(this, async (link) => { await link.flush(this) }, callback)
  }

  /**
   * A fresh session (a new token, and in a store a new id) holding only the named keys, as
   * passport and csrf-protection call it. Awaited, or given a callback, it is saved at once (in a
   * store: written under its new id, the old record deleted) and a store failure rejects or goes
   * to the callback; otherwise the reply saves it.
   */
  regenerate (keep?: readonly string[] | SessionCallback, callback?: SessionCallback): Promise<void> {
    if (typeof keep === 'function') {
      callback = keep
      keep = undefined
    }
    if (keep !== undefined && (!Array.isArray(keep) || !keep.every((key) => typeof key === 'string'))) {
      throw new TypeError('session.regenerate(keys) takes an array of the keys to keep')
    }
    renew(this[kState], keep)
    return act(this, async (link) => { await link.flush(this) }, callback)
  }

  /** Saves the session now (in a store, writes its record); the reply carries its cookie. */
  save (callback?: SessionCallback): Promise<void> {
    return act(this, async (link) => { await link.flush(this) }, callback)
  }

  /** Puts back the data as last saved (in a store, as the store holds it now), dropping this request's changes. */
  reload (callback?: SessionCallback): Promise<void> {
    return act(this, async (link) => {
      const state = this[kState]
      const text = await link.reload(this)
      if (text === null) {
        state.origin = undefined
        state.token = undefined
      }
      // null: nothing is saved any more; undefined: the backend keeps no other copy.
      const json = text === null ? '{}' : text ?? state.originText ?? '{}'
      state.data = secureJson.parse(json) as SessionRecord
      state.baseline = json
      state.mayHaveChanged = false
      state.touched = false
      state.regenerated = false
      state.kept = []
    }, callback)
  }

  /** Whether the session differs from what came in or was last saved: save() and the reply would write it. */
  isModified (): boolean {
    const state = this[kState]
    return this.changed || state.touched || state.regenerated
  }

  /**
   * The session's id, stable for its life: in a store the id its record is kept under (drawn
   * when first asked for a session not yet saved; a new one after regenerate(), login() or
   * destroy()). In the cookie it is kept in the data, under _sid, from the first time it is asked for.
   */
  get sessionId (): string {
    const state = this[kState]
    const kept = (state.settings.link ?? OWN_LINK).sessionId(this, state.regenerated)
    if (kept !== undefined) return kept
    const stored = state.data[SESSION_ID_KEY]
    if (typeof stored === 'string' && ID_SHAPE.test(stored)) return stored
    const drawn = newSessionId()
    willChange(state)
    state.data[SESSION_ID_KEY] = drawn
    return drawn
  }

  /** The token in the session's cookie: the one the request brought, or the one save() made; undefined for a session never saved. */
  get encryptedSessionId (): string | undefined {
    return this[kState].token
  }

  /** The session cookie's lifetime and attributes, as @fastify/session's session.cookie shows them. */
  get cookie (): SessionCookie {
    return new SessionCookie(this)
  }

  /** @internal After a save before the reply: the session as saved, and the cookie the reply carries. */
  [kRebase] (text: string, timestamp: number, pending: PendingCookie): void {
    const state = this[kState]
    if (text !== JSON.stringify(state.data)) state.data = secureJson.parse(text) as SessionRecord
    state.baseline = text
    state.originText = text
    state.origin = { timestamp, keyIndex: 0 }
    state.mayHaveChanged = false
    state.touched = false
    state.regenerated = false
    state.cleared = false
    state.kept = []
    state.pending = pending
    state.token = pending.token
  }

  /** @internal The cookie a save before the reply made, for the reply. */
  get [kPending] (): PendingCookie | undefined {
    return this[kState].pending
  }

  /**
   * Cookie attributes for this response (domain, path, secure, sameSite, httpOnly, partitioned,
   * priority), and the session's lifetime: `maxAge` in seconds or `expires` as a date, for
   * "remember me". A lifetime is kept in the session and enforced on the server, up to the
   * registration's maxTtl. Keys this plugin does not know (other plugins pass their own) are
   * ignored.
   */
  options (options: CookieOverrides): void {
    if (!isObjectValue(options)) throw new TypeError('session.options() takes an object of cookie options')
    const state = this[kState]
    const { settings } = state
    const { maxAge, expires } = options
    let lifetime: number | undefined
    if (maxAge !== undefined) {
      if (!Number.isSafeInteger(maxAge) || maxAge < 1) throw new TypeError('maxAge must be a whole number of seconds, 1 or more')
      lifetime = maxAge
    } else if (expires !== undefined) {
      if (!(expires instanceof Date) || Number.isNaN(expires.getTime())) throw new TypeError('expires must be a valid Date')
      lifetime = Math.ceil((expires.getTime() - Date.now()) / 1000)
      if (lifetime < 1) throw new TypeError('expires must lie in the future')
    }
    if (lifetime !== undefined && lifetime > settings.maxTtl) {
      throw new RangeError(`a session lifetime of ${lifetime} s is longer than the registration allows (maxTtl ${settings.maxTtl} s); raise maxTtl to allow it`)
    }
    state.cookieAttributes = { ...state.cookieAttributes, ...settings.cookieAttributes(options as Record<string, unknown>) }
    if (lifetime === undefined) return
    willChange(state)
    if (lifetime === settings.ttl) delete state.data[TTL_KEY]
    else state.data[TTL_KEY] = lifetime
    // A new lifetime starts now, as the cookie's Max-Age does.
    state.touched = true
  }

  /**
   * Stores the user under the user key (default current_user) in a session that keeps none of
   * the anonymous keys except those named by keepOnLogin, and issues a fresh token (in a store,
   * a new id): on a change of privilege nothing from before should carry over unasked (OWASP
   * session management). A user Python would call false (null, false, 0, '', {} or []) is
   * refused: it would read as nobody.
   */
  login (user: SessionUser<Data>): void {
    const { userKey, keepOnLogin } = this[kState].settings
    if (isNobody(user)) {
      throw new TypeError(`login() needs a user; ${JSON.stringify(user) ?? String(user)} reads as nobody (as in Python), use logout() to log out`)
    }
    checkEntry(userKey, user)
    renew(this[kState], keepOnLogin)
    this[kState].data[userKey] = user
    this[kState].kept = []
  }

  /** Empties the session, so its cookie is cleared (and, in a store, its record deleted). */
  logout (): void {
    void this.destroy()
  }

  /** The logged-in user, or undefined; a stored null, false, 0, '', {} or [] is nobody. */
  get user (): SessionUser<Data> | undefined {
    const user = this.get(this[kState].settings.userKey as keyof Data & string)
    return isNobody(user) ? undefined : user as SessionUser<Data>
  }

  /** Adds a message for a later request, stored as Flask stores flash() messages. */
  flash (category: string, message: unknown): void {
    if (typeof category !== 'string') throw new TypeError('A flash category must be a string')
    checkEntry(FLASHES_KEY, [[category, message]])
    const state = this[kState]
    const stored = state.data[FLASHES_KEY]
    const list = Array.isArray(stored) ? stored : []
    willChange(state)
    list.push([category, message])
    state.data[FLASHES_KEY] = list
  }

  /**
   * Returns the flashed messages (of one category, when given) and removes them from the
   * session; the others stay for a later call. Entries that are not [category, message] pairs
   * (a hand-edited or foreign session) are dropped.
   */
  flashes<Message = string> (category?: string): Array<FlashMessage<Message>> {
    const state = this[kState]
    const stored = state.data[FLASHES_KEY]
    if (stored === undefined) return []
    const taken: Array<FlashMessage<Message>> = []
    const kept: unknown[] = []
    for (const entry of Array.isArray(stored) ? stored as unknown[] : []) {
      if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string') continue
      if (category === undefined || entry[0] === category) taken.push({ category: entry[0], message: entry[1] as Message })
      else kept.push(entry)
    }
    willChange(state)
    if (kept.length === 0) delete state.data[FLASHES_KEY]
    else state.data[FLASHES_KEY] = kept
    return taken
  }

  /** Re-issues the cookie (a fresh timestamp, so a fresh ttl) even if nothing changed. */
  touch (): void {
    this[kState].touched = true
  }

  /** A plain copy of the data, as it would be stored. */
  data (): Data {
    return JSON.parse(JSON.stringify(this[kState].data)) as Data
  }

  /** JSON.stringify(session) gives the data. */
  toJSON (): Data {
    return this.data()
  }

  /** console.log(session) shows the data, not the internals. */
  [Symbol.for('nodejs.util.inspect.custom')] (): Data {
    return this.data()
  }

  /** Whether the data now differs from what came in, compared in serialised form. */
  get changed (): boolean {
    const state = this[kState]
    return state.destroyed || (state.mayHaveChanged && JSON.stringify(state.data) !== state.baseline)
  }

  get destroyed (): boolean {
    return this[kState].destroyed
  }

  /** destroyed, under the name @fastify/secure-session uses. */
  get deleted (): boolean {
    return this[kState].destroyed
  }

  /** @internal The data itself, for a backend that saves it key by key. */
  get [kRecord] (): SessionRecord {
    return this[kState].data
  }

  /** @internal Cookie attributes chosen with options() for this response. */
  get [kCookieAttributes] (): Record<string, unknown> | undefined {
    return this[kState].cookieAttributes
  }

  /** @internal What the plugin should do with the cookie. */
  [kDecide] (now: number, rules: SaveRules): SaveDecision {
    const state = this[kState]
    const { data, origin, settings } = state
    // An empty session is not stored: its cookie, if one came, is cleared (as Flask does).
    if (Object.keys(data).length === 0) {
      const ended = state.destroyed || state.cleared || state.regenerated
      if (ended || (origin !== undefined && state.mayHaveChanged)) return { action: 'clear', requested: true, keysDeleted: !ended }
      return origin !== undefined || state.clearIncoming ? { action: 'clear', requested: false, keysDeleted: false } : { action: 'keep' }
    }
    const json = state.mayHaveChanged ? JSON.stringify(data) : undefined
    const changed = json !== undefined && json !== state.baseline
    const requested = changed || state.touched || state.regenerated
    const ttl = lifetimeOf(data, settings)
    const renewAfter = rollingAfter(rules.rolling, ttl, settings)
    const rollingDue = origin !== undefined && renewAfter !== undefined && now - origin.timestamp >= renewAfter
    // Opened with an old key: re-issued under the current one, but as old as it was.
    const rotated = origin !== undefined && origin.keyIndex !== 0
    if (!requested && !rollingDue && !rotated) return { action: 'keep' }
    const fresh = requested || rollingDue
    const timestamp = fresh ? now : (origin as SessionOrigin).timestamp
    let text: string
    if (rules.createdKey !== undefined && typeof data[rules.createdKey] !== 'number') {
      data[rules.createdKey] = now
      text = checkLoadable(JSON.stringify(data))
    } else {
      // Unchanged, so renewing: the text that came, as it came. A renewal needs an origin, and
      // a session with an origin has its text.
      text = changed ? checkLoadable(json) : state.originText ?? JSON.stringify(data)
    }
    return { action: 'save', json: text, timestamp, fresh, ttl, requested, changed, regenerated: state.regenerated, carriesOver: state.kept.some((key) => Object.hasOwn(data, key)) }
  }
}

/** What regenerate() and login() do to the data: only the kept keys stay, and a new id follows. */
function renew (state: SessionState, keep: readonly string[] | undefined): void {
  const kept: SessionRecord = {}
  for (const key of keep ?? []) {
    if (Object.hasOwn(state.data, key)) kept[key] = state.data[key]
  }
  willChange(state)
  state.data = kept
  state.regenerated = true
  state.kept = Object.keys(kept)
}

/**
 * Runs what the app waits for: at once with a callback (called once, with the error if any),
 * or when the returned promise is awaited. A bare call starts nothing, so nothing is left
 * unawaited to reject: the reply does the work then, as before.
 */
function act (session: Session<any>, work: (link: SessionLink) => Promise<void>, callback: SessionCallback | undefined): Promise<void> {
  const link = session[kState].settings.link ?? OWN_LINK
  if (callback === undefined) return new OnDemand(async () => { await work(link) })
  return work(link).then(() => { callback(null) }, (error: Error) => { callback(error) })
}

function willChange (state: SessionState): void {
  state.baseline ??= JSON.stringify(state.data)
  state.mayHaveChanged = true
}

for (const name of Object.getOwnPropertyNames(Session.prototype)) API.add(name)
