// Revocation without a list. revokeSessions() writes one small record per user, a random
// generation and the time it was written, under a name no session id can take. Every session of
// a logged-in user carries the generation it was made under (key `_rev` of its JSON); a session
// whose generation is not its user's current one is refused wherever it is next seen. Nothing
// has to find a user's sessions, so no list can be incomplete, and a login, a load or a revoke
// each cost a fixed number of single-key store operations, whatever the user's session count.
import { type SessionFailure, SessionNotStoredError, SessionStoreError } from './backend.js'
import { base64 } from '../fernet/base64.js'
import { hkdf } from '../fernet/hkdf.js'
import { LRUCache } from 'lru-cache'
import { type Session, type SessionRecord, isNobody } from '../session.js'
import { type SessionStore, StoreRefusal } from '../stores/store.js'

/** The session key that carries the generation a session was made under. */
export const GENERATION_KEY = '_rev'
/** Revocation records sit beside sessions under ids no session id (url-safe base64) can be. */
export const RECORD_PREFIX = 'rev.'
/** Re-reads after a login's write before it gives up adopting revocations that keep coming. */
const MAX_ADOPTIONS = 8

/** A user's revocation record: the current generation, and when (ms) revokeSessions() wrote it. */
interface RevocationRecord {
  generation: string
  at: number
}

/** The generation a session is saved under, for one user; '' while that user has no record. */
export interface Stamp {
  user: string
  generation: string
}

export interface RevocationOptions {
  keys: Uint8Array[]
  store: SessionStore
  /** Milliseconds to wait for each store call, and for a whole revoke. */
  timeout: number
  userId: (user: unknown) => string | number | undefined
  userKey: string
  /** Seconds a session token can live: a record must outlive every token it may have to refuse. */
  maxTtl: number
}

/** A user's record, asked for before the session is known to still be that user's. */
export interface Prefetched {
  user: string
  record: Promise<RevocationRecord | undefined>
}

/** What a loaded session's generation says: refused, or kept under this stamp (none: no user). */
export type Checked = { stamp: Stamp | undefined, stripped: boolean } | Extract<SessionFailure, 'revoked'>

function newGeneration (): string {
  return base64.encode(globalThis.crypto.getRandomValues(new Uint8Array(16))).slice(0, 22)
}

/** A store call that settles within the timeout, failing as SessionStoreError (a 503). */
export async function storeCall<T> (operation: string, timeout: number, run: () => Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new SessionStoreError(operation, `no answer within ${timeout} ms`)) }, timeout)
  })
  const failing = run().catch(async (error: unknown) => await Promise.reject(
    error instanceof SessionStoreError || error instanceof SessionNotStoredError
      ? error
      : error instanceof StoreRefusal ? new SessionNotStoredError(error) : new SessionStoreError(operation, error)))
  try {
    return await Promise.race([failing, late])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Whether a session stands under its user's record: it carries the record's generation, or it
 * carries none (made by Python, or by a release before generations) and its token is younger
 * than the record.
 */
function sameGeneration (carried: unknown, timestamp: number, record: RevocationRecord): boolean {
  return typeof carried === 'string' ? carried === record.generation : timestamp * 1000 > record.at
}

/** Whether a record says what the session carries: its generation, or no record for a session made under none. */
function confirms (carried: unknown, timestamp: number, record: RevocationRecord | undefined): boolean {
  return record === undefined ? typeof carried !== 'string' || carried === '' : sameGeneration(carried, timestamp, record)
}

function parseRecord (data: string): RevocationRecord {
  try {
    const { g, t } = JSON.parse(data) as { g: unknown, t: unknown }
    if (typeof g === 'string' && typeof t === 'number') return { generation: g, at: t }
  } catch {}
  // Not ours to read (written by hand, or damaged): every session of the user is refused, and
  // logins from now on take the record as it is, until a revoke writes a proper one.
  return { generation: `?${data.slice(0, 64)}`, at: Number.MAX_SAFE_INTEGER }
}

export class Revocations {
  readonly #store: SessionStore
  readonly #timeout: number
  readonly #userId: RevocationOptions['userId']
  readonly #userKey: string
  readonly #lifetime: number
  /** HMAC keys that turn a user id into its record's name, one per configured key (rotation). */
  readonly #nameKeys: Promise<CryptoKey[]>
  readonly #names = new LRUCache<string, string[]>({ max: 10_000 })
  /** The stamp each loaded session passed its check under. */
  readonly #stamps = new WeakMap<Session, Stamp>()

  constructor (options: RevocationOptions) {
    this.#store = options.store
    this.#timeout = options.timeout
    this.#userId = options.userId
    this.#userKey = options.userKey
    // Twice the longest token life: a request that loaded a session just before a revoke may
    // re-issue its cookie just after, and the record must still be there to refuse that cookie.
    this.#lifetime = 2 * options.maxTtl * 1000
    // The label of the former per-user index: a record's name is the index's name with a prefix.
    this.#nameKeys = Promise.all(options.keys.map(async (key) => await globalThis.crypto.subtle.importKey(
      'raw', await hkdf(key, 'store user index') as Uint8Array<ArrayBuffer>, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])))
  }

  /** The user id of a session's data, as a string; undefined when nobody (or nobody nameable) is logged in. */
  userOf (data: SessionRecord): string | undefined {
    const user = data[this.#userKey]
    const id = isNobody(user) ? undefined : this.#userId(user)
    return id === undefined ? undefined : String(id)
  }

  /** The record's names under every configured key, the current key's first. */
  async namesOf (user: string): Promise<string[]> {
    const known = this.#names.get(user)
    if (known !== undefined) return known
    // An HMAC, never the id itself, whatever encryptStore says: a user id (chosen by users,
    // maybe) must not become a key or a file name, nor show in a dump of the store.
    const macs = await Promise.all((await this.#nameKeys).map(async (key) => await globalThis.crypto.subtle.sign('HMAC', key, new TextEncoder().encode(user))))
    const names = [...new Set(macs.map((mac) => RECORD_PREFIX + base64.encode(new Uint8Array(mac)).slice(0, 43)))]
    this.#names.set(user, names)
    return names
  }

  /** The user's current record; under several keys, the newest written. */
  async #current (user: string): Promise<RevocationRecord | undefined> {
    const names = await this.namesOf(user)
    const stored = await Promise.all(names.map(async (name) => await storeCall('get', this.#timeout, async () => await this.#store.get(name))))
    let newest: RevocationRecord | undefined
    for (const found of stored) {
      if (found === undefined) continue
      const record = parseRecord(found.data)
      if (newest === undefined || record.at > newest.at) newest = record
    }
    return newest
  }

  /** Starts reading a user's record now, for a check() that may want it. */
  prefetch (user: string): Prefetched {
    const record = this.#current(user)
    // Unused when the session is gone or now another user's: its failure then concerns nobody.
    record.catch(() => {})
    return { user, record }
  }

  /**
   * Checks a loaded session against its user's record, and takes the generation out of the data
   * (the app never sees it). A session with no generation (made by Python, or stored by a
   * release before this one) stands while its user has no record, and otherwise only if its
   * token was made after the record was written.
   */
  async check (data: SessionRecord, timestamp: number, prefetched?: Prefetched): Promise<Checked> {
    const carried = data[GENERATION_KEY]
    const stripped = Object.hasOwn(data, GENERATION_KEY)
    if (stripped) delete data[GENERATION_KEY]
    const user = this.userOf(data)
    if (user === undefined) return { stamp: undefined, stripped }
    const readAhead = prefetched?.user === user
    let record = readAhead ? await prefetched.record : await this.#current(user)
    // A record read ahead may be older than the session (a revoke's `except` rewrote the session
    // under a new generation meanwhile): it can only confirm. Anything else is decided by a
    // record read after the session, as without reading ahead.
    if (readAhead && !confirms(carried, timestamp, record)) record = await this.#current(user)
    // No record: never revoked, or revoked so long ago (2 maxTtl) that every session made
    // before it has expired. Every generation a session can carry then stands; a login since
    // the last revoke carries that revoke's, and must not end when its record does.
    if (record === undefined) return { stamp: { user, generation: '' }, stripped }
    if (!sameGeneration(carried, timestamp, record)) return 'revoked'
    return { stamp: { user, generation: record.generation }, stripped }
  }

  remember (session: Session, stamp: Stamp | undefined): void {
    if (stamp !== undefined) this.#stamps.set(session, stamp)
  }

  /**
   * The stamp a session is saved under. A session that passed its check keeps the generation it
   * passed under (a revoke since then refuses it next time); a new authentication (login(), a
   * user set on a session that had none or another) reads the current one, and must confirm()
   * it once written. Undefined: no user to stamp.
   */
  async stampFor (session: Session | undefined, data: SessionRecord, authenticated: boolean): Promise<{ stamp: Stamp, read: boolean } | undefined> {
    const user = this.userOf(data)
    if (user === undefined) return undefined
    const remembered = session === undefined ? undefined : this.#stamps.get(session)
    if (!authenticated && remembered?.user === user) return { stamp: remembered, read: false }
    return { stamp: await this.#fresh(user), read: true }
  }

  /** Whether the stamp's generation is still its user's. */
  async holds (stamp: Stamp): Promise<boolean> {
    return (await this.#fresh(stamp.user)).generation === stamp.generation
  }

  async #fresh (user: string): Promise<Stamp> {
    return { user, generation: (await this.#current(user))?.generation ?? '' }
  }

  /**
   * After a login's write: reads the generation again and has the session rewritten under a
   * newer one until it holds, so that a login that completes after a revoke resolved stands.
   */
  async confirm (stamp: Stamp, rewrite: (stamp: Stamp) => Promise<boolean>): Promise<void> {
    let written = stamp
    for (let attempt = 0; attempt < MAX_ADOPTIONS; attempt++) {
      const now = await this.#fresh(stamp.user)
      if (now.generation === written.generation) return
      if (!await rewrite(now)) return
      written = now
    }
    throw new SessionStoreError('put', `the user's sessions were revoked ${MAX_ADOPTIONS} times while one logged in`)
  }

  /**
   * Writes a new generation for the user: every session made under an earlier one is refused
   * from now on. One write per configured key; a write that meets another revoke's lets that
   * one's generation stand, which ends every earlier session just as well.
   */
  async revoke (user: string): Promise<Stamp> {
    const stamp = { user, generation: newGeneration() }
    const data = JSON.stringify({ g: stamp.generation, t: Date.now() })
    await Promise.all((await this.namesOf(user)).map(async (name) => {
      const current = await storeCall('get', this.#timeout, async () => await this.#store.get(name))
      const written = await storeCall('put', this.#timeout, async () => await this.#store.put(name, data, current?.version ?? null, this.#lifetime, name))
      // Gone meanwhile (expired between the read and the write): write it as new.
      if (!written.ok && written.current === undefined) {
        await storeCall('put', this.#timeout, async () => await this.#store.put(name, data, null, this.#lifetime, name))
      }
    }))
    // A revoke that met another's write lets that one's generation stand: what `except` is
    // kept under must be the generation stored, not the one this call tried to write.
    return await this.#fresh(user)
  }

  /** Keeps a session under the generation a revoke just wrote (revokeSessions' except). */
  adopt (session: Session, stamp: Stamp): void {
    this.#stamps.set(session, stamp)
  }

  stampOf (session: Session): Stamp | undefined {
    return this.#stamps.get(session)
  }
}

/**
 * The JSON with the stamp's generation under GENERATION_KEY. The data never holds it (it is taken
 * out on load), so the same data under the same generation always gives the same text.
 */
export function withGeneration (json: string, stamp: Stamp | undefined): string {
  if (stamp === undefined) return json
  const data = JSON.parse(json) as SessionRecord
  data[GENERATION_KEY] = stamp.generation
  return JSON.stringify(data)
}

/** The JSON as the app sees it: without the generation a stored record carries. */
export function withoutGeneration (json: string): string {
  const data = JSON.parse(json) as SessionRecord
  if (!Object.hasOwn(data, GENERATION_KEY)) return json
  delete data[GENERATION_KEY]
  return JSON.stringify(data)
}
