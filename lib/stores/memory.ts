// The embedded store, for development, tests and a single process: bounded by entries and by
// bytes, entries expire, and a sweep that does not keep the process alive drops what expired.
// Sessions live only as long as the process.
//
// One bound, two pools. A record written with a user (a logged-in session), or under a
// revocation id (`rev.`), is guarded; any other (a visitor's cart, a CSRF secret, a flash) is
// anonymous. At the bound the least recently used anonymous record goes first, whoever writes;
// a guarded record goes only to make room for another guarded one, and an anonymous write that
// finds nothing but guarded records is refused. A revocation record is never pushed out at
// all, only expired (it is small, and lives twice maxTtl). So a client without a login, however many
// requests it sends, can neither end a logged-in session nor hold more than the bound. One
// bound rather than a fixed share for each: capacity that logged-in users do not use serves
// visitors, and the defaults keep their meaning.
import { type MemoryExpressStore, type MemoryExpressStoreOptions, memoryExpressStore } from './memory-express.js'
import type { PutResult, SessionStore, StoredSession } from './store.js'
import { StoreRefusal } from './store.js'

export interface MemoryStoreOptions {
  /** Most records held, logged-in and anonymous together; default 100,000. */
  maxEntries?: number
  /** Most bytes of records held (counted as two a character), together; default 64 MiB. */
  maxBytes?: number
  /** Milliseconds between sweeps of expired sessions; default 60,000. */
  sweepInterval?: number
}

/** Ids that hold a user's revocation record: guarded like the sessions they govern. */
export const REVOCATION_ID_PREFIX = 'rev.'

interface Entry extends StoredSession {
  readonly id: string
  readonly user: string | undefined
  readonly size: number
  readonly pool: Pool
  /** performance.now() at which it expires. */
  expires: number
  older: Entry | undefined
  newer: Entry | undefined
}

/**
 * A pool's records in order of use, least recently used first: a list through the entries, so
 * that using a record moves no Map entry (a Map deleted from and added to on every read fills
 * with holes that its iteration steps over, which made finding the oldest slow).
 */
class Pool {
  size = 0
  oldest: Entry | undefined
  #newest: Entry | undefined

  add (entry: Entry): void {
    this.size++
    this.#append(entry)
  }

  remove (entry: Entry): void {
    this.size--
    this.#unlink(entry)
  }

  /** Makes it the most recently used. */
  use (entry: Entry): void {
    if (entry === this.#newest) return
    this.#unlink(entry)
    this.#append(entry)
  }

  #append (entry: Entry): void {
    entry.older = this.#newest
    entry.newer = undefined
    if (this.#newest === undefined) this.oldest = entry
    else this.#newest.newer = entry
    this.#newest = entry
  }

  #unlink (entry: Entry): void {
    if (entry.older === undefined) this.oldest = entry.newer
    else entry.older.newer = entry.newer
    if (entry.newer === undefined) this.#newest = entry.older
    else entry.newer.older = entry.older
  }
}

// A record's weight: its strings at two bytes a character, and what holding it costs besides.
const ENTRY_OVERHEAD = 64

const checkCount = (value: unknown, name: string): number => {
  if (!Number.isSafeInteger(value) || (value as number) < 1) throw new TypeError(`MemoryStore: ${name} must be a whole number, 1 or more`)
  return value as number
}

export class MemoryStore implements SessionStore {
  readonly #records = new Map<string, Entry>()
  readonly #guarded = new Pool()
  readonly #anonymous = new Pool()
  // Revocation records are never pushed out for room, only expired: one evicted would give
  // back to the sessions it revoked the generation they carry.
  readonly #revocations = new Pool()
  #bytes = 0
  readonly #users = new Map<string, Set<string>>()
  readonly #sweeper: ReturnType<typeof setInterval>
  readonly #maxEntries: number
  readonly #maxBytes: number

  constructor (options: MemoryStoreOptions = {}) {
    const { maxEntries = 100_000, maxBytes = 64 * 1024 * 1024, sweepInterval = 60_000 } = options
    this.#maxEntries = checkCount(maxEntries, 'maxEntries')
    this.#maxBytes = checkCount(maxBytes, 'maxBytes')
    this.#sweeper = setInterval(() => { this.sweep() }, checkCount(sweepInterval, 'sweepInterval'))
    this.#sweeper.unref()
  }

  /** How many records it holds (expired ones until the next sweep included). */
  get size (): number {
    return this.#records.size
  }

  /** The bytes its records weigh, as counted against maxBytes. */
  get bytes (): number {
    return this.#bytes
  }

  async get (id: string): Promise<StoredSession | undefined> {
    const entry = this.#use(id, performance.now())
    return entry === undefined ? undefined : { data: entry.data, version: entry.version }
  }

  async put (id: string, data: string, expected: number | null, ttl: number, user?: string): Promise<PutResult> {
    const now = performance.now()
    const current = this.#use(id, now)
    if (expected === null ? current !== undefined : current?.version !== expected) {
      return { ok: false, current: current === undefined ? undefined : { data: current.data, version: current.version } }
    }
    const version = (expected ?? 0) + 1
    this.#write(id, data, version, now + ttl, user, user !== undefined || id.startsWith(REVOCATION_ID_PREFIX))
    return { ok: true, version }
  }

  async touch (id: string, ttl: number, _user?: string): Promise<boolean> {
    const now = performance.now()
    const entry = this.#use(id, now)
    if (entry === undefined) return false
    entry.expires = now + ttl
    return true
  }

  async destroy (id: string, _user?: string): Promise<boolean> {
    const entry = this.#records.get(id)
    if (entry === undefined) return false
    this.#remove(entry)
    return entry.expires > performance.now()
  }

  async revoke (user: string): Promise<number> {
    let count = 0
    for (const id of [...this.#users.get(user) ?? []]) {
      const entry = this.#records.get(id) as Entry
      this.#remove(entry)
      if (entry.expires > performance.now()) count++
    }
    return count
  }

  /**
   * The same records as an express-session / @fastify/session store (callbacks, an
   * EventEmitter), under the same bounds: see memory-express.ts. This object stays the
   * plugin's store; the view is for code that wants express-session's interface.
   */
  expressStore (options?: MemoryExpressStoreOptions): MemoryExpressStore {
    return memoryExpressStore({
      read: (id) => this.#use(id, performance.now())?.data,
      write: (id, data, ttl, guarded) => { this.#write(id, data, 1, performance.now() + ttl, undefined, guarded) },
      remove: (id) => {
        const entry = this.#records.get(id)
        if (entry !== undefined) this.#remove(entry)
      }
    }, options)
  }

  /** A live record, made the most recently used of its pool; an expired one is dropped. */
  #use (id: string, now: number): Entry | undefined {
    const entry = this.#records.get(id)
    if (entry === undefined) return undefined
    if (entry.expires <= now) {
      this.#remove(entry)
      return undefined
    }
    entry.pool.use(entry)
    return entry
  }

  #write (id: string, data: string, version: number, expires: number, user: string | undefined, guarded: boolean): void {
    const size = 2 * (data.length + id.length + (user?.length ?? 0)) + ENTRY_OVERHEAD
    // Never dropped silently: the request would be told it was saved.
    if (size > this.#maxBytes) throw new StoreRefusal('too-large', `a record of ${size} bytes does not fit in maxBytes (${this.#maxBytes})`)
    const old = this.#records.get(id)
    if (old !== undefined) this.#remove(old)
    if (!this.#makeRoom(size, guarded)) {
      if (old !== undefined) this.#insert(old)
      throw new StoreRefusal('full', `every one of its ${this.size} records (${this.#bytes} bytes) belongs to a logged-in user`)
    }
    this.#insert({ id, data, version, user, size, pool: id.startsWith(REVOCATION_ID_PREFIX) ? this.#revocations : guarded ? this.#guarded : this.#anonymous, expires, older: undefined, newer: undefined })
  }

  /** Frees room for one more record of `size` bytes; false when only guarded records could give it. */
  #makeRoom (size: number, guarded: boolean): boolean {
    while (this.size >= this.#maxEntries || this.#bytes + size > this.#maxBytes) {
      const pool = this.#anonymous.size > 0 ? this.#anonymous : this.#guarded
      // Nothing left but revocation records: the bound is reached.
      if (pool.size === 0) return false
      const oldest = pool.oldest as Entry
      // An expired record is no one's session: it goes whoever needs the room.
      if (pool === this.#guarded && !guarded && oldest.expires > performance.now()) return false
      this.#remove(oldest)
    }
    return true
  }

  #insert (entry: Entry): void {
    this.#records.set(entry.id, entry)
    entry.pool.add(entry)
    this.#bytes += entry.size
    if (entry.user === undefined) return
    let ids = this.#users.get(entry.user)
    if (ids === undefined) this.#users.set(entry.user, ids = new Set())
    ids.add(entry.id)
  }

  /** Takes a record off its pool, the byte count and its user's index. */
  #remove (entry: Entry): void {
    this.#records.delete(entry.id)
    entry.pool.remove(entry)
    this.#bytes -= entry.size
    if (entry.user === undefined) return
    const ids = this.#users.get(entry.user) as Set<string>
    ids.delete(entry.id)
    if (ids.size === 0) this.#users.delete(entry.user)
  }

  /** Drops expired records (and with them their entries in the users' index). */
  sweep (): void {
    const now = performance.now()
    for (const pool of [this.#guarded, this.#anonymous, this.#revocations]) {
      let entry = pool.oldest
      while (entry !== undefined) {
        const next = entry.newer
        if (entry.expires <= now) this.#remove(entry)
        entry = next
      }
    }
  }

  /** Stops the sweep timer (it never keeps the process alive, but tests may want it gone). */
  close (): void {
    clearInterval(this.#sweeper)
  }
}
