// The session in a store, with only a Fernet token of its random id in the cookie, as
// fastapi_session does: a forged, tampered or expired cookie is refused by the MAC and ttl
// before any store round-trip. The data is stored as a Fernet token of its JSON (or as plain
// JSON), written only when it changed, and merged key by key with whatever another request
// wrote meanwhile, so that concurrent requests changing different keys both survive.
import { LRUCache } from 'lru-cache'
import { type CookieUpdate, type LifetimeRules, type SessionBackend, type SessionFailure, lifetimeProblem, openText, parseSessionJson } from './backend.js'
import { CACHE_BYTES_PER_ENTRY } from './cookie.js'
import { base64 } from '../fernet/base64.js'
import { Fernet, MultiFernet, ageProblem } from '../fernet/fernet.js'
import { hkdf } from '../fernet/hkdf.js'
import { type SaveAction, Session, type SessionRecord, type SessionSettings, isNobody, kRecord, lifetimeOf } from '../session.js'
import type { SessionStore, StoredSession } from '../stores/store.js'

export interface StoreBackendOptions {
  /** Raw keys; the first encrypts. */
  keys: Uint8Array[]
  store: SessionStore
  /** Milliseconds to wait for each store call. */
  timeout: number
  /** Store a Fernet token of the JSON (true) or the JSON itself. */
  encrypt: boolean
  /** The id revoke() matches, from the stored user. */
  userId: (user: unknown) => string | number | undefined
  absoluteLifetime: number | undefined
  createdKey: string
  settings: SessionSettings
  /** Cookie tokens remembered with the id they hold (0: none). */
  cacheSize: number
}

/**
 * The store could not be reached in time, or failed: the request is answered 503. The reason
 * (a driver's message may name hosts and database users) is the error's cause: in the log, not
 * in the reply.
 */
export class SessionStoreError extends Error {
  readonly statusCode = 503
  readonly code = 'FST_SESSION_STORE_UNAVAILABLE'

  constructor (operation: string, reason: unknown) {
    super(`fastify-encrypted-session: the session store is unavailable (${operation})`, { cause: reason instanceof Error ? reason : new Error(String(reason)) })
    this.name = 'SessionStoreError'
  }
}

/** 128 bits from crypto.getRandomValues, as 22 characters of url-safe base64. */
const ID_BYTES = 16
const ID_SHAPE = /^[A-Za-z0-9_-]{22}$/
// A cookie token of an id is about 120 characters; anything much longer is no such token.
const MAX_ID_TOKEN_LENGTH = 256
// Stored sessions are not bounded by a cookie; Fernet's own default bound (64 KiB) would be.
const MAX_STORED_TOKEN_LENGTH = 256 * 1024 * 1024
/**
 * Attempts to merge with concurrent writers before the store is declared too busy. Every failed
 * attempt means another writer succeeded, so up to this many requests writing one session at
 * once all get through.
 */
const MAX_WRITE_ATTEMPTS = 32
/** New ids tried before giving up; 128 random bits repeat only when the store misbehaves. */
const MAX_NEW_IDS = 4

interface RememberedToken {
  id: string
  timestamp: number
  keyIndex: number
}

/** A stored data token that verified: the session it belongs to, and the JSON it holds. */
interface RememberedData {
  id: string
  text: string
  keyIndex: number
}

// An encrypted record holds its session's id before the JSON: a token copied from one record to
// another opens nothing, and a record is never a cookie (Python and cookie mode want plain JSON).
const ID_SEPARATOR = ':'

/** What a session was loaded from, to write back only what changed. */
interface Loaded {
  id: string
  version: number
  /** The JSON text as stored. */
  text: string
  /** The stored data was under an old key: rewrite it under the current one. */
  stale: boolean
}

function newId (): string {
  return base64.encode(globalThis.crypto.getRandomValues(new Uint8Array(ID_BYTES))).slice(0, 22)
}

/** The keys this request set (with their JSON) or removed, compared with what it loaded. */
function changesOf (before: SessionRecord, after: SessionRecord): { set: Map<string, unknown>, removed: string[] } {
  const set = new Map<string, unknown>()
  for (const [key, value] of Object.entries(after)) {
    if (!Object.hasOwn(before, key) || JSON.stringify(before[key]) !== JSON.stringify(value)) set.set(key, value)
  }
  return { set, removed: Object.keys(before).filter((key) => !Object.hasOwn(after, key)) }
}

export class StoreBackend implements SessionBackend {
  readonly #store: SessionStore
  readonly #timeout: number
  readonly #encrypt: boolean
  readonly #userId: StoreBackendOptions['userId']
  readonly #settings: SessionSettings
  readonly #rules: LifetimeRules
  readonly #idFernet: MultiFernet
  readonly #dataFernet: MultiFernet
  /** HMAC keys that turn a user id into the name of its index, one per configured key. */
  readonly #indexKeys: Promise<CryptoKey[]>
  readonly #cache: LRUCache<string, RememberedToken> | undefined
  // Stored data tokens already verified, with their JSON: a record changes only when written,
  // so reading one again costs no decryption (WebCrypto work is most of a store-mode request).
  readonly #texts: LRUCache<string, RememberedData> | undefined
  // Index names by user id: each is an HMAC, needed on every write of a logged-in session.
  readonly #indexNames = new LRUCache<string, string>({ max: 10_000 })
  readonly #loaded = new WeakMap<Session, Loaded>()
  // Ids drawn for sessions not yet stored whose app asked for session.sessionId; their first save uses it.
  readonly #planned = new WeakMap<Session, string>()

  constructor (options: StoreBackendOptions) {
    this.#store = options.store
    this.#timeout = options.timeout
    this.#encrypt = options.encrypt
    this.#userId = options.userId
    this.#settings = options.settings
    this.#rules = { settings: options.settings, absoluteLifetime: options.absoluteLifetime, createdKey: options.createdKey }
    this.#idFernet = new MultiFernet(options.keys.map((key) => new Fernet(key, { maxTokenLength: MAX_ID_TOKEN_LENGTH })))
    this.#dataFernet = new MultiFernet(options.keys.map((key) => new Fernet(key, { maxTokenLength: MAX_STORED_TOKEN_LENGTH })))
    this.#indexKeys = Promise.all(options.keys.map(async (key) => await globalThis.crypto.subtle.importKey(
      'raw', await hkdf(key, 'store user index') as Uint8Array<ArrayBuffer>, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])))
    this.#cache = options.cacheSize > 0 ? new LRUCache({ max: options.cacheSize }) : undefined
    // Bounded like the cookie backend's cache: cacheSize entries and cacheSize KB.
    this.#texts = options.cacheSize > 0 && options.encrypt
      ? new LRUCache({ max: options.cacheSize, maxSize: options.cacheSize * CACHE_BYTES_PER_ENTRY, sizeCalculation: (data, token) => 2 * (token.length + data.text.length) + 160 })
      : undefined
  }

  fresh (hadBadCookie = false): Session {
    return new Session({ hadBadCookie, settings: this.#settings })
  }

  /** Every session needs its record: nothing is answered without the store. */
  lookup (): undefined {
    return undefined
  }

  async open (token: string, now: number): Promise<Session | SessionFailure> {
    const known = await this.#idOf(token, now)
    if (typeof known === 'string') return known
    const stored = await this.#call('get', async () => await this.#store.get(known.id))
    if (stored === undefined) return 'no-record'
    const opened = await this.#read(stored, known.id)
    if (typeof opened === 'string') return opened
    const { data, text, stale } = opened
    const over = lifetimeProblem(data, known.timestamp, now, this.#rules)
    if (over !== undefined) return over
    const session = new Session({ data, origin: { timestamp: known.timestamp, keyIndex: known.keyIndex }, originText: text, settings: this.#settings, token })
    this.#loaded.set(session, { id: known.id, version: stored.version, text, stale })
    return session
  }

  /** The id a cookie token holds, checked by its MAC and the longest lifetime before anything else. */
  async #idOf (token: string, now: number): Promise<RememberedToken | SessionFailure> {
    const remembered = this.#cache?.get(token)
    if (remembered !== undefined) return ageProblem(remembered.timestamp, this.#settings.maxTtl, now) ?? remembered
    const opened = await openText(this.#idFernet, token, { ttl: this.#settings.maxTtl, now })
    if (typeof opened === 'string') return opened
    const id = opened.text
    if (!ID_SHAPE.test(id)) return 'not-an-id'
    const known = { id, timestamp: opened.timestamp, keyIndex: opened.keyIndex }
    this.#cache?.set(token, known)
    return known
  }

  /** A stored session's data, or why it cannot be read (a removed key, a foreign value). */
  async #read (stored: StoredSession, id: string): Promise<{ data: SessionRecord, text: string, stale: boolean } | SessionFailure> {
    let known: RememberedData | undefined = this.#encrypt ? this.#texts?.get(stored.data) : { id, text: stored.data, keyIndex: 0 }
    if (known === undefined) {
      const opened = await openText(this.#dataFernet, stored.data)
      if (typeof opened === 'string') return opened
      const split = opened.text.indexOf(ID_SEPARATOR)
      if (split < 0) return 'foreign-record'
      known = { id: opened.text.slice(0, split), text: opened.text.slice(split + 1), keyIndex: opened.keyIndex }
    }
    if (known.id !== id) return 'foreign-record'
    const data = parseSessionJson(known.text)
    if (typeof data === 'string') return data
    // Remembered once it proved to hold a session, as the cookie backend does (never in plain mode).
    this.#texts?.set(stored.data, known)
    return { data, text: known.text, stale: known.keyIndex !== 0 }
  }

  async #seal (id: string, text: string): Promise<string> {
    if (!this.#encrypt) return text
    const token = await this.#dataFernet.encrypt(id + ID_SEPARATOR + text)
    // The next request reads this token back: remember what it holds.
    this.#texts?.set(token, { id, text, keyIndex: 0 })
    return token
  }

  /** The cookie's token for an id, with the time the session's life counts from. */
  async #issue (id: string, timestamp: number): Promise<string> {
    const token = await this.#idFernet.encryptAtTime(id, timestamp)
    this.#cache?.set(token, { id, timestamp, keyIndex: 0 })
    return token
  }

  /** The name of a user's index: an HMAC of its id, so that a dump of the store shows no user ids. */
  async #indexName (id: string | number, key: CryptoKey): Promise<string> {
    if (!this.#encrypt) return String(id)
    const mac = await globalThis.crypto.subtle.sign('HMAC', key, new TextEncoder().encode(String(id)))
    return base64.encode(new Uint8Array(mac)).slice(0, 43)
  }

  /** The index a session with this data is listed under, if it has a user. */
  async #indexOf (data: SessionRecord): Promise<string | undefined> {
    const user = data[this.#settings.userKey]
    const id = isNobody(user) ? undefined : this.#userId(user)
    if (id === undefined) return undefined
    const known = this.#indexNames.get(String(id))
    if (known !== undefined) return known
    const name = await this.#indexName(id, (await this.#indexKeys)[0] as CryptoKey)
    this.#indexNames.set(String(id), name)
    return name
  }

  async #call<T> (operation: string, run: () => Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new SessionStoreError(operation, `no answer within ${this.#timeout} ms`)) }, this.#timeout)
    })
    const failing = run().catch(async (error: unknown) => await Promise.reject(new SessionStoreError(operation, error)))
    try {
      return await Promise.race([failing, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Stores a new session under a fresh id (the one planned for it, if the app asked for it). */
  async #create (text: string, ttl: number, index: string | undefined, planned?: string): Promise<{ id: string, version: number }> {
    for (let attempt = 0; attempt < MAX_NEW_IDS; attempt++) {
      const id = attempt === 0 && planned !== undefined ? planned : newId()
      const data = await this.#seal(id, text)
      const result = await this.#call('put', async () => await this.#store.put(id, data, null, ttl, index))
      if (result.ok) return { id, version: result.version }
    }
    throw new SessionStoreError('put', `${MAX_NEW_IDS} new session ids in a row were reported taken`)
  }

  async save (session: Session, action: SaveAction): Promise<CookieUpdate> {
    const loaded = this.#loaded.get(session)
    const record = session[kRecord]
    const ttl = action.ttl * 1000
    const index = await this.#indexOf(record)
    if (loaded === undefined || action.regenerated) {
      // A new id on login and regenerate(), and the old record deleted: no session fixation.
      const { id, version } = await this.#create(action.json, ttl, index, this.#planned.get(session))
      this.#planned.delete(session)
      // What regenerate() kept came from the old record: if another request ended that one
      // meanwhile (logout, revokeSessions), the copy must not outlive it. What this request
      // set itself (a login, passport's user after its regenerate(), a flash message) stands.
      if (loaded !== undefined && await this.#end(loaded) === false && action.carriesOver) {
        await this.#call('destroy', async () => await this.#store.destroy(id, index))
        return undefined
      }
      this.#loaded.set(session, { id, version, text: action.json, stale: false })
      return await this.#issue(id, action.timestamp)
    }
    if (action.json !== loaded.text || loaded.stale) {
      const outcome = await this.#update(loaded, record, ttl, index)
      // Ended: another request emptied it meanwhile; gone: deleted or revoked meanwhile, and the
      // cookie is left for the next request to find it gone.
      if (outcome !== 'kept') return outcome === 'ended' ? null : undefined
    } else if (action.fresh) {
      // Renewal without a change: the record lives on, unwritten.
      if (!await this.#call('touch', async () => await this.#store.touch(loaded.id, ttl, index))) return undefined
    }
    return await this.#issue(loaded.id, action.timestamp)
  }

  /**
   * Writes this request's changes. When another request wrote the record since it was loaded,
   * its data is read again and this request's changed keys applied over it: per key, the last
   * write wins. 'gone' when the record was destroyed or revoked meanwhile: it is not brought
   * back. 'ended' when the session written is empty.
   */
  async #update (loaded: Loaded, record: SessionRecord, ttl: number, index: string | undefined): Promise<'kept' | 'ended' | 'gone'> {
    const before = parseSessionJson(loaded.text) as SessionRecord
    const { set, removed } = changesOf(before, record)
    let text = JSON.stringify(record)
    let expected = loaded.version
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const data = await this.#seal(loaded.id, text)
      const result = await this.#call('put', async () => await this.#store.put(loaded.id, data, expected, ttl, index))
      // An empty session is written too, by the same rule, rather than deleted: a request that
      // wrote meanwhile merges its keys into it instead of losing them. Its cookie is cleared,
      // and the record expires by itself.
      if (result.ok) {
        // What the record now holds, for a session saved again in the same request.
        loaded.version = result.version
        loaded.text = text
        loaded.stale = false
        return text === '{}' ? 'ended' : 'kept'
      }
      if (result.current === undefined) return 'gone'
      const theirs = await this.#read(result.current, loaded.id)
      // Written under a key this server lacks (a rollout under way): merging over nothing would
      // erase the other writer's data.
      if (typeof theirs === 'string') throw new SessionStoreError('put', `another server's write cannot be read here (${theirs})`)
      const merged = theirs.data
      for (const key of removed) delete merged[key]
      for (const [key, value] of set) merged[key] = value
      text = JSON.stringify(merged)
      expected = result.current.version
    }
    throw new SessionStoreError('put', `the session changed under ${MAX_WRITE_ATTEMPTS} concurrent writes in a row`)
  }

  /** Deletes a loaded session's record; whether it was still there (undefined: the store cannot tell). */
  async #end (loaded: Loaded): Promise<boolean | undefined | void> {
    const before = parseSessionJson(loaded.text) as SessionRecord
    const index = await this.#indexOf(before)
    return await this.#call('destroy', async () => await this.#store.destroy(loaded.id, index))
  }

  end (session: Session, keysDeleted: boolean): Promise<boolean> | undefined {
    const loaded = this.#loaded.get(session)
    if (loaded === undefined) return undefined
    if (!keysDeleted) return this.#end(loaded).then(() => {
      this.#loaded.delete(session)
      return true
    })
    // Emptied key by key: the deletions are merged with concurrent writes like any change.
    const before = parseSessionJson(loaded.text) as SessionRecord
    return this.#update(loaded, {}, lifetimeOf(before, this.#settings) * 1000, undefined).then((outcome) => outcome !== 'kept')
  }

  sessionId (session: Session, renewed: boolean): string {
    const loaded = this.#loaded.get(session)
    if (loaded !== undefined && !renewed) return loaded.id
    let planned = this.#planned.get(session)
    if (planned === undefined) {
      planned = newId()
      this.#planned.set(session, planned)
    }
    return planned
  }

  async reload (session: Session): Promise<string | null> {
    const loaded = this.#loaded.get(session)
    if (loaded === undefined) return null
    const stored = await this.#call('get', async () => await this.#store.get(loaded.id))
    const opened = stored === undefined ? 'no-record' : await this.#read(stored, loaded.id)
    if (typeof opened === 'string') {
      this.#loaded.delete(session)
      return null
    }
    this.#loaded.set(session, { id: loaded.id, version: (stored as StoredSession).version, text: opened.text, stale: opened.stale })
    return opened.text
  }

  persisted (session: Session): string | undefined {
    return this.#loaded.get(session)?.text
  }

  async encode (data: SessionRecord, now: number): Promise<string> {
    const text = JSON.stringify(data)
    const { id } = await this.#create(text, lifetimeOf(data, this.#settings) * 1000, await this.#indexOf(data))
    return await this.#issue(id, now)
  }

  /** Deletes every session of a user: the index under every configured key (rotation). */
  async revoke (userId: string | number): Promise<number> {
    const names = new Set(await Promise.all((await this.#indexKeys).map(async (key) => await this.#indexName(userId, key))))
    let count = 0
    for (const name of names) count += await this.#call('revoke', async () => await this.#store.revoke(name))
    return count
  }
}
