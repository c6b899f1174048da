// Any express-session / @fastify/session store (connect-redis, connect-pg-simple, ...), with
// callbacks or promises, behind the SessionStore interface. Their interface has no atomic
// "write if unchanged", so a write reads the record first: within one process writes to a
// session are queued and merge exactly; across processes two writes that meet in the same
// instant can lose one (the README says so; RedisStore has no such gap).
import type { ExpressStoreLike, PutResult, SessionStore, StoredSession } from './store.js'

/** The record given to the store: the shape express-session stores expect, and our fields. */
interface Record {
  /** express-session's cookie: the stores read expires (or originalMaxAge) for their own expiry. */
  cookie: { originalMaxAge: number, expires: string }
  version: number
  /** A Fernet token, or with encryptStore false the session itself, for other programs to read. */
  data: unknown
}

interface IndexRecord {
  cookie: Record['cookie']
  ids: string[]
}

// Index records live beside sessions under ids that no session id (url-safe base64) can be.
const INDEX_PREFIX = 'user.'
/** Sessions listed per user at most; the oldest fall off (they can still expire on their own). */
const MAX_LISTED = 1000

function call<T> (store: ExpressStoreLike, method: 'get' | 'set' | 'destroy' | 'touch', ...args: unknown[]): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const callback = (error?: unknown, value?: T): void => { error == null ? resolve(value as T) : reject(error) }
    const result = (store[method] as (...all: unknown[]) => unknown)(...args, callback)
    if (typeof (result as Promise<T> | undefined)?.then === 'function') (result as Promise<T>).then(resolve, reject)
  })
}

function cookieOf (ttl: number): Record['cookie'] {
  return { originalMaxAge: ttl, expires: new Date(Date.now() + ttl).toISOString() }
}

export class ExpressStoreAdapter implements SessionStore {
  readonly #store: ExpressStoreLike
  readonly #plain: boolean
  /** The last write queued per id: writes to one record run one after another. */
  readonly #queues = new Map<string, Promise<unknown>>()

  /** @param plain the data is JSON text to store as an object, rather than a token to store as it is */
  constructor (store: ExpressStoreLike, plain: boolean) {
    this.#store = store
    this.#plain = plain
  }

  #queued<T> (id: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(id) ?? Promise.resolve()
    const next = previous.then(work, work)
    const tail = next.then(() => {}, () => {})
    this.#queues.set(id, tail)
    void tail.then(() => { if (this.#queues.get(id) === tail) this.#queues.delete(id) })
    return next
  }

  async get (id: string): Promise<StoredSession | undefined> {
    const record = await call<Record | null | undefined>(this.#store, 'get', id)
    if (record == null || typeof record.version !== 'number' || record.data === undefined) return undefined
    return { data: typeof record.data === 'string' ? record.data : JSON.stringify(record.data), version: record.version }
  }

  async put (id: string, data: string, expected: number | null, ttl: number, user?: string): Promise<PutResult> {
    return await this.#queued(id, async () => {
      const current = await this.get(id)
      if (expected === null ? current !== undefined : current?.version !== expected) return { ok: false, current }
      const version = (expected ?? 0) + 1
      const record: Record = { cookie: cookieOf(ttl), version, data: this.#plain ? JSON.parse(data) : data }
      await call(this.#store, 'set', id, record)
      if (user !== undefined) await this.#list(user, id, ttl)
      return { ok: true, version } as const
    })
  }

  async touch (id: string, ttl: number, user?: string): Promise<boolean> {
    if (typeof this.#store.touch === 'function') {
      // express-session's touch carries no data: the store only moves the record's expiry.
      await call(this.#store, 'touch', id, { cookie: cookieOf(ttl) })
    } else {
      const alive = await this.#queued(id, async () => {
        const record = await call<Record | null | undefined>(this.#store, 'get', id)
        if (record == null) return false
        await call(this.#store, 'set', id, { ...record, cookie: cookieOf(ttl) })
        return true
      })
      if (!alive) return false
    }
    if (user !== undefined) await this.#list(user, id, ttl)
    return true
  }

  async destroy (id: string, user?: string): Promise<void> {
    await call(this.#store, 'destroy', id)
    if (user !== undefined) await this.#unlist(user, id)
  }

  async revoke (user: string): Promise<number> {
    const index = INDEX_PREFIX + user
    return await this.#queued(index, async () => {
      const record = await call<IndexRecord | null | undefined>(this.#store, 'get', index)
      const ids = record?.ids ?? []
      let count = 0
      for (const id of ids) {
        if (await this.get(id) !== undefined) count++
        await call(this.#store, 'destroy', id)
      }
      await call(this.#store, 'destroy', index)
      return count
    })
  }

  async #list (user: string, id: string, ttl: number): Promise<void> {
    const index = INDEX_PREFIX + user
    await this.#queued(index, async () => {
      const record = await call<IndexRecord | null | undefined>(this.#store, 'get', index)
      const ids = (record?.ids ?? []).filter((listed) => listed !== id)
      ids.push(id)
      // The index lives as long as its longest-lived session.
      const expires = Math.max(Date.now() + ttl, Date.parse(record?.cookie?.expires ?? '') || 0)
      await call(this.#store, 'set', index, { cookie: cookieOf(expires - Date.now()), ids: ids.slice(-MAX_LISTED) })
    })
  }

  async #unlist (user: string, id: string): Promise<void> {
    const index = INDEX_PREFIX + user
    await this.#queued(index, async () => {
      const record = await call<IndexRecord | null | undefined>(this.#store, 'get', index)
      if (record?.ids?.includes(id) !== true) return
      await call(this.#store, 'set', index, { ...record, ids: record.ids.filter((listed) => listed !== id) })
    })
  }
}
