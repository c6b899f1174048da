// The embedded store, for development, tests and a single process: bounded by entries and by
// bytes (least recently used out first), entries expire, and a sweep that does not keep the
// process alive drops what expired. Sessions live only as long as the process.
import { LRUCache } from 'lru-cache'
import type { PutResult, SessionStore, StoredSession } from './store.js'

export interface MemoryStoreOptions {
  /** Most sessions held; default 100,000. */
  maxEntries?: number
  /** Most bytes of session data held (counted as two a character); default 64 MiB. */
  maxBytes?: number
  /** Milliseconds between sweeps of expired sessions; default 60,000. */
  sweepInterval?: number
}

interface Entry extends StoredSession {
  user: string | undefined
}

const checkCount = (value: unknown, name: string): number => {
  if (!Number.isSafeInteger(value) || (value as number) < 1) throw new TypeError(`MemoryStore: ${name} must be a whole number, 1 or more`)
  return value as number
}

export class MemoryStore implements SessionStore {
  readonly #records: LRUCache<string, Entry>
  readonly #users = new Map<string, Set<string>>()
  readonly #sweeper: ReturnType<typeof setInterval>
  readonly #maxBytes: number
  readonly #sizeOf = (entry: Entry, id: string): number => 2 * (entry.data.length + id.length) + 64

  constructor (options: MemoryStoreOptions = {}) {
    const { maxEntries = 100_000, maxBytes = 64 * 1024 * 1024, sweepInterval = 60_000 } = options
    this.#maxBytes = checkCount(maxBytes, 'maxBytes')
    this.#records = new LRUCache<string, Entry>({ max: checkCount(maxEntries, 'maxEntries'), maxSize: this.#maxBytes, sizeCalculation: this.#sizeOf })
    this.#sweeper = setInterval(() => { this.sweep() }, checkCount(sweepInterval, 'sweepInterval'))
    this.#sweeper.unref()
  }

  /** How many sessions it holds (expired ones until the next sweep included). */
  get size (): number {
    return this.#records.size
  }

  async get (id: string): Promise<StoredSession | undefined> {
    const entry = this.#records.get(id)
    return entry === undefined ? undefined : { data: entry.data, version: entry.version }
  }

  async put (id: string, data: string, expected: number | null, ttl: number, user?: string): Promise<PutResult> {
    const current = this.#records.get(id)
    if (expected === null ? current !== undefined : current?.version !== expected) {
      return { ok: false, current: current === undefined ? undefined : { data: current.data, version: current.version } }
    }
    const version = (expected ?? 0) + 1
    const entry = { data, version, user }
    // lru-cache drops an entry larger than its whole bound, silently: the session would be lost
    // while the request was told it was saved.
    const size = this.#sizeOf(entry, id)
    if (size > this.#maxBytes) throw new Error(`MemoryStore: a session of ${size} bytes does not fit in maxBytes (${this.#maxBytes})`)
    this.#records.set(id, entry, { ttl })
    this.#list(user, id)
    return { ok: true, version }
  }

  async touch (id: string, ttl: number, user?: string): Promise<boolean> {
    const entry = this.#records.get(id)
    if (entry === undefined) return false
    this.#records.set(id, entry, { ttl })
    this.#list(user, id)
    return true
  }

  async destroy (id: string, user?: string): Promise<boolean> {
    if (user !== undefined) this.#users.get(user)?.delete(id)
    return this.#records.delete(id)
  }

  async revoke (user: string): Promise<number> {
    const ids = this.#users.get(user)
    this.#users.delete(user)
    let count = 0
    for (const id of ids ?? []) if (this.#records.delete(id)) count++
    return count
  }

  #list (user: string | undefined, id: string): void {
    if (user === undefined) return
    let ids = this.#users.get(user)
    if (ids === undefined) this.#users.set(user, ids = new Set())
    ids.add(id)
  }

  /** Drops expired sessions, and index entries of sessions that are gone. */
  sweep (): void {
    this.#records.purgeStale()
    for (const [user, ids] of this.#users) {
      for (const id of ids) if (!this.#records.has(id)) ids.delete(id)
      if (ids.size === 0) this.#users.delete(user)
    }
  }

  /** Stops the sweep timer (it never keeps the process alive, but tests may want it gone). */
  close (): void {
    clearInterval(this.#sweeper)
  }
}
