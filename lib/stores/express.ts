// Any express-session / @fastify/session store (connect-redis, connect-pg-simple, ...), with
// callbacks or promises, behind the SessionStore interface. Their interface has no atomic
// "write if unchanged", so a write reads the record first: within one process writes to a
// session are queued and merge exactly; across processes two writes that meet in the same
// instant can lose one (the README says so; RedisStore has no such gap). A deletion must not be
// undone by a write that read the record just before it, on any server, nor by a write the
// store carries out after we gave up waiting for it: ending a session writes a marker first,
// then deletes the record, and every write to an existing session looks for the marker once the
// store has answered the write (in time, late or with an error) and deletes the record again. A
// load reads the record alone, one store call (issue 18): it sees such a write's record until
// that check has deleted it, and the record of a write the store never answers until it expires
// (the README states both).
// Revocation keeps no list here either: a user's revocation record is one record among others.
import type { ExpressStoreLike, PutResult, SessionStore, StoredSession } from './store.js'

/** The record given to the store: the shape express-session stores expect, and our fields. */
interface Record {
  /**
   * express-session's cookie, as its stores read it for their own expiry: some take maxAge
   * (memorystore, better-sqlite3-session-store: a day without it), some originalMaxAge
   * (session-file-store) or expires (connect-redis, connect-pg-simple).
   */
  cookie: { maxAge: number, originalMaxAge: number, expires: string }
  version: number
  /** A Fernet token, or with encryptStore false the session itself, for other programs to read. */
  data: unknown
}

// Markers of ended sessions, under ids no session id (url-safe base64) can be. (The per-user
// index records `user.` of earlier releases are no longer read or written: each expires with
// the longest-lived session it listed.)
const ENDED_PREFIX = 'ended.'
/** The plugin's own records (a user's revocation record) have a dot in their id: never ended, no marker to look for. */
const isOwnRecord = (id: string): boolean => id.includes('.')

export interface ExpressStoreAdapterOptions {
  /** The data is JSON text to store as an object, rather than a token to store as it is. */
  plain: boolean
  /** Milliseconds after which a store call that has not answered counts as failed. */
  timeout: number
  /** Milliseconds a session's end is remembered: as long as any of its cookies can be valid. */
  endedFor: number
}

function cookieOf (ttl: number): Record['cookie'] {
  return { maxAge: ttl, originalMaxAge: ttl, expires: new Date(Date.now() + ttl).toISOString() }
}

export class ExpressStoreAdapter implements SessionStore {
  readonly #store: ExpressStoreLike
  readonly #plain: boolean
  readonly #timeout: number
  readonly #endedFor: number
  /** The last write queued per id: writes to one record run one after another. */
  readonly #queues = new Map<string, Promise<unknown>>()

  constructor (store: ExpressStoreLike, options: ExpressStoreAdapterOptions) {
    this.#store = store
    this.#plain = options.plain
    this.#timeout = options.timeout
    this.#endedFor = options.endedFor
  }

  /**
   * One call of the store, callback or promise style. It settles within the timeout whatever
   * the store does: a callback that never comes would otherwise hold up every later call
   * queued behind it, for good. `unconfirmed` runs once if the store answers a call that did not
   * succeed in time (it failed, or answered after the timeout): a write may have been carried out
   * all the same, and nobody waits for it any more.
   */
  #call<T> (method: 'get' | 'set' | 'destroy' | 'touch', args: unknown[], unconfirmed?: () => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let gaveUp = false
      let answered = false
      const timer = setTimeout(() => {
        gaveUp = true
        reject(new Error(`the store did not answer ${method} within ${this.#timeout} ms`))
      }, this.#timeout)
      const settle = (error: unknown, value?: T): void => {
        // The first answer counts: some stores give two (connect-redis calls the callback and
        // resolves its promise).
        if (answered) return
        answered = true
        clearTimeout(timer)
        // A store that reports a missing record as ENOENT (session-file-store) means none, as
        // express-session reads it.
        if (method === 'get' && (error as { code?: unknown } | null)?.code === 'ENOENT') resolve(undefined as T)
        else error == null ? resolve(value as T) : reject(error)
        if (unconfirmed !== undefined && (gaveUp || error != null)) unconfirmed()
      }
      let result: unknown
      try {
        result = (this.#store[method] as (...all: unknown[]) => unknown)(...args, settle)
      } catch (error) {
        // Thrown rather than answered: an answer all the same, as a write may have begun.
        settle(error)
        return
      }
      if (typeof (result as Promise<T> | undefined)?.then === 'function') (result as Promise<T>).then((value) => { settle(null, value) }, settle)
    })
  }

  #queued<T> (id: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(id) ?? Promise.resolve()
    const next = previous.then(work, work)
    const tail = next.then(() => {}, () => {})
    this.#queues.set(id, tail)
    void tail.then(() => { if (this.#queues.get(id) === tail) this.#queues.delete(id) })
    return next
  }

  /** The record alone, not its marker: a load is one store call. */
  async get (id: string): Promise<StoredSession | undefined> {
    const record = await this.#call<Record | null | undefined>('get', [id])
    if (record == null || typeof record.version !== 'number' || record.data === undefined) return undefined
    return { data: typeof record.data === 'string' ? record.data : JSON.stringify(record.data), version: record.version }
  }

  async put (id: string, data: string, expected: number | null, ttl: number): Promise<PutResult> {
    return await this.#queued(id, async (): Promise<PutResult> => {
      const current = await this.get(id)
      if (expected === null ? current !== undefined : current?.version !== expected) return { ok: false, current }
      const version = (expected ?? 0) + 1
      const record: Record = { cookie: cookieOf(ttl), version, data: this.#plain ? JSON.parse(data) : data }
      // A new id was never ended, nor is one of the plugin's own records; an existing session
      // may have been, after it was read above: the marker is looked for once the store has
      // answered the write, in time or not.
      const existing = expected !== null && !isOwnRecord(id)
      await this.#call('set', [id, record], existing ? () => { this.#checkLater(id) } : undefined)
      if (existing && await this.#undoIfEnded(id)) return { ok: false, current: undefined }
      return { ok: true, version }
    })
  }

  /** After a write: if the session was ended meanwhile (here or on another server), ends it again. */
  async #undoIfEnded (id: string): Promise<boolean> {
    if (await this.#call('get', [ENDED_PREFIX + id]) == null) return false
    await this.#call('destroy', [id])
    return true
  }

  /**
   * The same check, for a write that failed or that we stopped waiting for, once the store has
   * answered it after all. The call has already failed to its caller, so nobody is left to tell
   * of this check's own failure, and it is dropped. It starts once the store's callback has
   * returned, not inside it.
   */
  #checkLater (id: string): void {
    void Promise.resolve().then(async () => { await this.#undoIfEnded(id) }).catch(() => {})
  }

  async touch (id: string, ttl: number): Promise<boolean> {
    if (typeof this.#store.touch === 'function') {
      // express-session's touch carries no data: the store only moves the record's expiry. Some
      // do it by reading the record and writing it back (session-file-store), which brings back
      // a record deleted in between: a touch is checked for the marker as any write is.
      await this.#call('touch', [id, { cookie: cookieOf(ttl) }], () => { this.#checkLater(id) })
      return !await this.#undoIfEnded(id)
    }
    return await this.#queued(id, async () => {
      const record = await this.#call<Record | null | undefined>('get', [id])
      if (record == null) return false
      await this.#call('set', [id, { ...record, cookie: cookieOf(ttl) }], () => { this.#checkLater(id) })
      return !await this.#undoIfEnded(id)
    })
  }

  async destroy (id: string): Promise<boolean> {
    return await this.#end(id)
  }

  /**
   * Ends a session: marked as ended first, which every write from then on finds once written,
   * at once and without waiting for writes queued on it; then the record is deleted, after
   * those writes. Whether it was alive before: its record there, and no marker. The marker is
   * read here, unlike in a load: regenerate(keep) drops what it copied from a session that
   * this says was not alive, which must hold from the moment another server marked it, before
   * that server has deleted the record.
   */
  async #end (id: string): Promise<boolean> {
    const [record, ended] = await Promise.all([this.get(id), this.#call<unknown>('get', [ENDED_PREFIX + id])])
    const existed = record !== undefined && ended == null
    await this.#call('set', [ENDED_PREFIX + id, { cookie: cookieOf(this.#endedFor) }])
    await this.#queued(id, async () => { await this.#call('destroy', [id]) })
    return existed
  }
}
