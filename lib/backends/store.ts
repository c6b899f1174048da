// The session in a store, with only a Fernet token of its random id in the cookie, as
// fastapi_session does: a forged, tampered or expired cookie is refused by the MAC and ttl
// before any store round-trip. The data is stored as a Fernet token of its JSON (or as plain
// JSON), written only when it changed, and merged key by key with whatever another request
// wrote meanwhile, so that concurrent requests changing different keys both survive.
import { LRUCache } from 'lru-cache'
import { type CookieUpdate, type LifetimeRules, type SessionBackend, type SessionFailure, SessionNotStoredError, SessionStoreError, lifetimeProblem, openText, parseSessionJson } from './backend.js'
import { CACHE_BYTES_PER_ENTRY } from './cookie.js'
import { Revocations, type Stamp, storeCall, withGeneration, withoutGeneration } from './revocation.js'
import { base64 } from '../fernet/base64.js'
import { Fernet, MultiFernet, ageProblem } from '../fernet/fernet.js'
import { type SaveAction, Session, type SessionRecord, type SessionSettings, kRecord, lifetimeOf } from '../session.js'
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

export { SessionNotStoredError, SessionStoreError }

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
  /** The user the session held when this server last loaded or saved it: a hint, checked on use. */
  user?: string | undefined
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

/** A session's stored JSON, the generation it is saved under included, and that generation. */
interface Stamped {
  text: string
  stamp: Stamp | undefined
  /** A new authentication: the generation was read for it, and must be confirmed once written. */
  read: boolean
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
  readonly #settings: SessionSettings
  readonly #rules: LifetimeRules
  readonly #idFernet: MultiFernet
  readonly #dataFernet: MultiFernet
  readonly #revocations: Revocations
  readonly #cache: LRUCache<string, RememberedToken> | undefined
  // The cookie token last issued for an id at a given second: the same id and the same time make
  // the same claim, so a session saved again within that second gets that token again, unsealed.
  readonly #issued: LRUCache<string, string> | undefined
  // Stored data tokens already verified, with their JSON: a record changes only when written,
  // so reading one again costs no decryption (WebCrypto work is most of a store-mode request).
  readonly #texts: LRUCache<string, RememberedData> | undefined
  readonly #loaded = new WeakMap<Session, Loaded>()
  // Ids drawn for sessions not yet stored whose app asked for session.sessionId; their first save uses it.
  readonly #planned = new WeakMap<Session, string>()

  constructor (options: StoreBackendOptions) {
    this.#store = options.store
    this.#timeout = options.timeout
    this.#encrypt = options.encrypt
    this.#settings = options.settings
    this.#rules = { settings: options.settings, absoluteLifetime: options.absoluteLifetime, createdKey: options.createdKey }
    this.#idFernet = new MultiFernet(options.keys.map((key) => new Fernet(key, { maxTokenLength: MAX_ID_TOKEN_LENGTH })))
    this.#dataFernet = new MultiFernet(options.keys.map((key) => new Fernet(key, { maxTokenLength: MAX_STORED_TOKEN_LENGTH })))
    this.#revocations = new Revocations({
      keys: options.keys,
      store: options.store,
      timeout: options.timeout,
      userId: options.userId,
      userKey: options.settings.userKey,
      maxTtl: options.settings.maxTtl
    })
    this.#cache = options.cacheSize > 0 ? new LRUCache({ max: options.cacheSize }) : undefined
    this.#issued = options.cacheSize > 0 ? new LRUCache({ max: options.cacheSize }) : undefined
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
    // Its user's revocation record is read beside the session, one round-trip for both, when
    // this server knows whose session it was; check() reads it again if that has changed.
    const prefetched = known.user === undefined ? undefined : this.#revocations.prefetch(known.user)
    const stored = await this.#call('get', async () => await this.#store.get(known.id))
    if (stored === undefined) return 'no-record'
    const opened = await this.#read(stored, known.id)
    if (typeof opened === 'string') return opened
    const { data, text, stale } = opened
    const over = lifetimeProblem(data, known.timestamp, now, this.#rules)
    if (over !== undefined) return over
    const checked = await this.#revocations.check(data, known.timestamp, prefetched)
    known.user = checked === 'revoked' ? undefined : checked.stamp?.user
    if (checked === 'revoked') {
      // Refused for good: its record goes, as a logout's does.
      await this.#call('destroy', async () => await this.#store.destroy(known.id))
      return checked
    }
    // The app sees the data without its generation; a renewal then serialises the data again.
    const session = new Session({ data, origin: { timestamp: known.timestamp, keyIndex: known.keyIndex }, originText: checked.stripped ? undefined : text, settings: this.#settings, token })
    this.#revocations.remember(session, checked.stamp)
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
  async #issue (id: string, timestamp: number, user: string | undefined): Promise<string> {
    const claim = `${id}@${timestamp}`
    const issued = this.#issued?.get(claim)
    if (issued !== undefined) return issued
    const token = await this.#idFernet.encryptAtTime(id, timestamp)
    this.#cache?.set(token, { id, timestamp, keyIndex: 0, user })
    this.#issued?.set(claim, token)
    return token
  }

  async #call<T> (operation: string, run: () => Promise<T>): Promise<T> {
    return await storeCall(operation, this.#timeout, run)
  }

  /** Stores a new session under a fresh id (the one planned for it, if the app asked for it). */
  async #create (text: string, ttl: number, user: string | undefined, planned?: string): Promise<Loaded> {
    for (let attempt = 0; attempt < MAX_NEW_IDS; attempt++) {
      const id = attempt === 0 && planned !== undefined ? planned : newId()
      const data = await this.#seal(id, text)
      const result = await this.#call('put', async () => await this.#store.put(id, data, null, ttl, user))
      if (result.ok) return { id, version: result.version, text, stale: false }
    }
    throw new SessionStoreError('put', `${MAX_NEW_IDS} new session ids in a row were reported taken`)
  }

  /**
   * The JSON to store, under the generation of its user's revocation record: the one the
   * session was loaded under, or for a new authentication the current one.
   */
  async #stamped (session: Session | undefined, data: SessionRecord, json: string, authenticated: boolean): Promise<Stamped> {
    const stamping = await this.#revocations.stampFor(session, data, authenticated)
    return { text: withGeneration(json, stamping?.stamp), stamp: stamping?.stamp, read: stamping?.read === true }
  }

  /** The hint stores get of a record's owner: the user's revocation record name (an HMAC of the id). */
  async #ownerOf (stamp: Stamp | undefined): Promise<string | undefined> {
    return stamp === undefined ? undefined : (await this.#revocations.namesOf(stamp.user))[0]
  }

  /**
   * After a new authentication was written: if a revoke wrote a newer generation meanwhile,
   * the session takes it (the login completed after it), key by key over concurrent writes.
   * Whether the session is still there.
   */
  async #confirm (written: Loaded, stamped: Stamped, ttl: number): Promise<boolean> {
    if (!stamped.read) return true
    let alive = true
    await this.#revocations.confirm(stamped.stamp as Stamp, async (newer) => {
      const owner = await this.#ownerOf(newer)
      alive = await this.#update(written, parseSessionJson(withGeneration(written.text, newer)) as SessionRecord, ttl, owner) === 'kept'
      return alive
    })
    return alive
  }

  async save (session: Session, action: SaveAction): Promise<CookieUpdate> {
    const loaded = this.#loaded.get(session)
    const ttl = action.ttl * 1000
    const regenerated = loaded === undefined || action.regenerated
    // login(), or a regenerate() that kept nothing of the old session: a new authentication.
    const stamped = await this.#stamped(session, session[kRecord], action.json, regenerated && !action.carriesOver)
    const owner = await this.#ownerOf(stamped.stamp)
    if (regenerated) {
      // What regenerate() carries over of a session revoked meanwhile is not copied at all.
      if (action.carriesOver && stamped.stamp !== undefined && !stamped.read && !await this.#revocations.holds(stamped.stamp)) {
        await this.#end(loaded as Loaded)
        return undefined
      }
      // A new id on login and regenerate(), and the old record deleted: no session fixation.
      const created = await this.#create(stamped.text, ttl, owner, this.#planned.get(session))
      this.#planned.delete(session)
      // What regenerate() kept came from the old record: if another request ended that one
      // meanwhile (logout, revokeSessions), the copy must not outlive it. What this request set itself (a
      // login, passport's user after its regenerate(), a flash message) stands.
      if (loaded !== undefined && await this.#end(loaded) === false && action.carriesOver) {
        await this.#call('destroy', async () => await this.#store.destroy(created.id, owner))
        return undefined
      }
      if (!await this.#confirm(created, stamped, ttl)) return undefined
      this.#loaded.set(session, created)
      return await this.#issue(created.id, action.timestamp, stamped.stamp?.user)
    }
    // The cookie's token is sealed while the record is written: neither waits for the other. It
    // is handed out only if the session is kept.
    const [kept, token] = await Promise.all([this.#keep(loaded, stamped, ttl, owner, action.fresh), this.#issue(loaded.id, action.timestamp, stamped.stamp?.user)])
    return kept === true ? token : kept
  }

  /**
   * Writes what changed, or renews the record's life: true when the session is kept; null when
   * it ended (another request emptied it meanwhile); undefined when it is gone (deleted or
   * revoked meanwhile: the cookie is left for the next request to find it gone).
   */
  async #keep (loaded: Loaded, stamped: Stamped, ttl: number, owner: string | undefined, fresh: boolean): Promise<true | null | undefined> {
    if (stamped.text !== loaded.text || loaded.stale) {
      const outcome = await this.#update(loaded, parseSessionJson(stamped.text) as SessionRecord, ttl, owner)
      if (outcome !== 'kept') return outcome === 'ended' ? null : undefined
      if (!await this.#confirm(loaded, stamped, ttl)) return undefined
    } else if (fresh) {
      // Renewal without a change: the record lives on, unwritten.
      if (!await this.#call('touch', async () => await this.#store.touch(loaded.id, ttl, owner))) return undefined
    }
    return true
  }

  /**
   * Writes this request's changes. When another request wrote the record since it was loaded,
   * its data is read again and this request's changed keys applied over it: per key, the last
   * write wins. 'gone' when the record was destroyed or revoked meanwhile: it is not brought
   * back. 'ended' when the session written is empty.
   */
  async #update (loaded: Loaded, record: SessionRecord, ttl: number, owner: string | undefined): Promise<'kept' | 'ended' | 'gone'> {
    const before = parseSessionJson(loaded.text) as SessionRecord
    const { set, removed } = changesOf(before, record)
    let text = JSON.stringify(record)
    let expected = loaded.version
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const data = await this.#seal(loaded.id, text)
      const result = await this.#call('put', async () => await this.#store.put(loaded.id, data, expected, ttl, owner))
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
    return await this.#call('destroy', async () => await this.#store.destroy(loaded.id))
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
    return withoutGeneration(opened.text)
  }

  /** After a save that gave a token: the session's record is known. */
  persisted (session: Session): string {
    return withoutGeneration((this.#loaded.get(session) as Loaded).text)
  }

  async encode (data: SessionRecord, now: number): Promise<string> {
    const ttl = lifetimeOf(data, this.#settings) * 1000
    const stamped = await this.#stamped(undefined, data, JSON.stringify(data), true)
    const created = await this.#create(stamped.text, ttl, await this.#ownerOf(stamped.stamp))
    await this.#confirm(created, stamped, ttl)
    return await this.#issue(created.id, now, stamped.stamp?.user)
  }

  /**
   * A new generation for the user: every session made before it is refused where it is next
   * seen. `except` is rewritten under the new generation and lives on.
   */
  async revoke (userId: string | number, except: Session | undefined): Promise<void> {
    // Within storeTimeout as a whole, or rejected. A write that lands after the rejection only
    // ends sessions sooner; a retry writes yet another generation.
    await this.#call('revoke', async () => {
      const stamp = await this.#revocations.revoke(String(userId))
      if (except === undefined || this.#revocations.stampOf(except)?.user !== stamp.user) return
      const loaded = this.#loaded.get(except)
      // Ended earlier in this request (destroy(), logout()): nothing is left to keep.
      if (loaded === undefined) return
      this.#revocations.adopt(except, stamp)
      const ttl = lifetimeOf(except[kRecord], this.#settings) * 1000
      await this.#update(loaded, parseSessionJson(withGeneration(loaded.text, stamp)) as SessionRecord, ttl, await this.#ownerOf(stamp))
      // Another revoke may have written a newer generation meanwhile (the button clicked
      // twice): confirmed as a login is, so the kept session lives under the one that stands.
      await this.#revocations.confirm(stamp, async (newer) => {
        this.#revocations.adopt(except, newer)
        return await this.#update(loaded, parseSessionJson(withGeneration(loaded.text, newer)) as SessionRecord, ttl, await this.#ownerOf(newer)) === 'kept'
      })
    })
  }
}
