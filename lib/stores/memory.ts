// The embedded store, for development, tests and a single process: bounded by entries and by
// bytes, entries expire, and a sweep that does not keep the process alive drops what expired.
// Sessions live only as long as the process.
//
// One bound, two pools. A record written with a user (a logged-in session), or under a
// revocation id (`rev.`), is guarded; any other (a visitor's cart, a CSRF secret, a flash) is
// anonymous. At the bound the least recently used anonymous record goes first, whoever writes;
// a guarded record goes only to make room for another guarded one, and an anonymous write that
// finds nothing but guarded records is refused. So a client without a login, however many
// requests it sends, can neither end a logged-in session nor hold more than the bound. One
// bound rather than a fixed share for each: capacity that logged-in users do not use serves
// visitors, and the defaults keep their meaning.
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
  user: string | undefined
  /** performance.now() at which it expires. */
  expires: number
  size: number
}

/** Records by id, least recently used first (a Map keeps insertion order). */
type Pool = Map<string, Entry>

// A record's weight: its strings at two bytes a character, and what holding it costs besides.
const ENTRY_OVERHEAD = 64

const checkCount = (value: unknown, name: string): number => {
  if (!Number.isSafeInteger(value) || (value as number) < 1) throw new TypeError(`MemoryStore: ${name} must be a whole number, 1 or more`)
  return value as number
}

export class MemoryStore implements SessionStore {
  readonly #guarded: Pool = new Map()
  readonly #anonymous: Pool = new Map()
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
    return this.#guarded.size + this.#anonymous.size
  }

  /** The bytes its records weigh, as counted against maxBytes. */
  get bytes (): number {
    return this.#bytes
  }

  async get (id: string): Promise<StoredSession | undefined> {
    const entry = this.#use(id)
    return entry === undefined ? undefined : { data: entry.data, version: entry.version }
  }

  async put (id: string, data: string, expected: number | null, ttl: number, user?: string): Promise<PutResult> {
    const current = this.#use(id)
    if (expected === null ? current !== undefined : current?.version !== expected) {
      return { ok: false, current: current === undefined ? undefined : { data: current.data, version: current.version } }
    }
    const version = (expected ?? 0) + 1
    this.#write(id, data, version, ttl, user, user !== undefined || id.startsWith(REVOCATION_ID_PREFIX))
    return { ok: true, version }
  }

  async touch (id: string, ttl: number, _user?: string): Promise<boolean> {
    const entry = this.#use(id)
    if (entry === undefined) return false
    entry.expires = performance.now() + ttl
    return true
  }

  async destroy (id: string, _user?: string): Promise<boolean> {
    const found = this.#find(id)
    if (found === undefined) return false
    this.#remove(found[0], id, found[1])
    return found[1].expires > performance.now()
  }

  async revoke (user: string): Promise<number> {
    let count = 0
    for (const id of [...this.#users.get(user) ?? []]) {
      const found = this.#find(id) as [Pool, Entry]
      this.#remove(found[0], id, found[1])
      if (found[1].expires > performance.now()) count++
    }
    return count
  }

  /** The pool and entry of a record, expired or not, without using it. */
  #find (id: string): [Pool, Entry] | undefined {
    const guarded = this.#guarded.get(id)
    if (guarded !== undefined) return [this.#guarded, guarded]
    const anonymous = this.#anonymous.get(id)
    return anonymous === undefined ? undefined : [this.#anonymous, anonymous]
  }

  /** A live record, made the most recently used of its pool; an expired one is dropped. */
  #use (id: string): Entry | undefined {
    const found = this.#find(id)
    if (found === undefined) return undefined
    const [pool, entry] = found
    pool.delete(id)
    if (entry.expires <= performance.now()) {
      this.#forget(id, entry)
      return undefined
    }
    pool.set(id, entry)
    return entry
  }

  #write (id: string, data: string, version: number, ttl: number, user: string | undefined, guarded: boolean): void {
    const size = 2 * (data.length + id.length + (user?.length ?? 0)) + ENTRY_OVERHEAD
    // Never dropped silently: the request would be told it was saved.
    if (size > this.#maxBytes) throw new StoreRefusal('too-large', `a record of ${size} bytes does not fit in maxBytes (${this.#maxBytes})`)
    const old = this.#find(id)
    if (old !== undefined) this.#remove(old[0], id, old[1])
    if (!this.#makeRoom(size, guarded)) {
      if (old !== undefined) this.#insert(old[0], id, old[1])
      throw new StoreRefusal('full', `every one of its ${this.size} records (${this.#bytes} bytes) belongs to a logged-in user`)
    }
    this.#insert(guarded ? this.#guarded : this.#anonymous, id, { data, version, user, expires: performance.now() + ttl, size })
  }

  /** Frees room for one more record of `size` bytes; false when only guarded records could give it. */
  #makeRoom (size: number, guarded: boolean): boolean {
    while (this.size >= this.#maxEntries || this.#bytes + size > this.#maxBytes) {
      const pool = this.#anonymous.size > 0 ? this.#anonymous : this.#guarded
      const [id, entry] = pool.entries().next().value as [string, Entry]
      // An expired record is no one's session: it goes whoever needs the room.
      if (pool === this.#guarded && !guarded && entry.expires > performance.now()) return false
      this.#remove(pool, id, entry)
    }
    return true
  }

  #insert (pool: Pool, id: string, entry: Entry): void {
    pool.set(id, entry)
    this.#bytes += entry.size
    if (entry.user === undefined) return
    let ids = this.#users.get(entry.user)
    if (ids === undefined) this.#users.set(entry.user, ids = new Set())
    ids.add(id)
  }

  #remove (pool: Pool, id: string, entry: Entry): void {
    pool.delete(id)
    this.#forget(id, entry)
  }

  /** Takes a record that left its pool off the byte count and its user's index. */
  #forget (id: string, entry: Entry): void {
    this.#bytes -= entry.size
    if (entry.user === undefined) return
    const ids = this.#users.get(entry.user) as Set<string>
    ids.delete(id)
    if (ids.size === 0) this.#users.delete(entry.user)
  }

  /** Drops expired records (and with them their entries in the users' index). */
  sweep (): void {
    const now = performance.now()
    for (const pool of [this.#guarded, this.#anonymous]) {
      for (const [id, entry] of pool) if (entry.expires <= now) this.#remove(pool, id, entry)
    }
  }

  /** Stops the sweep timer (it never keeps the process alive, but tests may want it gone). */
  close (): void {
    clearInterval(this.#sweeper)
  }
}
