// lib/stores/: the session stores (MemoryStore, RedisStore, the express-session adapter). They
// keep opaque records by id and know nothing of sessions' meaning: nothing of backends/ (nor of
// Fastify) is imported here. A store is usable, and testable, on its own.
// What a session store provides. The plugin's store backend needs one atomic operation that
// express-session's interface lacks: write only if the record is still the version that was
// read. With it, two requests that change different keys of one session both survive, on any
// number of servers. MemoryStore and RedisStore implement it; express-session stores are
// adapted (express.ts) with the weaker guarantee the README states.

/** A stored session: its data (a Fernet token, or JSON text) and a version that every write raises. */
export interface StoredSession {
  data: string
  version: number
}

export type PutResult =
  | { ok: true, version: number }
  /** Not written: the record is no longer as expected; what it holds now (undefined: it is gone). */
  | { ok: false, current: StoredSession | undefined }

export interface SessionStore {
  /** The stored session, or undefined when there is none (never stored, expired, deleted, revoked). */
  get: (id: string) => Promise<StoredSession | undefined>
  /**
   * Writes `data` if the record is as expected: `expected` null means the id must be unused (a
   * new session), a number means the record must still hold that version. On success the record
   * lives `ttl` milliseconds from now. `user`, when given, says the record belongs to a
   * logged-in user (an opaque name, the same for all of one user's records): a hint for a
   * store's eviction, never a list to keep. Revocation needs no list (see README, Revocation).
   * Ids with a dot are the plugin's own records (`rev.` + a name: a user's revocation record).
   */
  put: (id: string, data: string, expected: number | null, ttl: number, user?: string) => Promise<PutResult>
  /** Extends the record's life to `ttl` milliseconds from now; false when it is gone. */
  touch: (id: string, ttl: number, user?: string) => Promise<boolean>
  /**
   * Deletes the record; resolves to whether it was there (undefined: the store cannot tell).
   * regenerate() uses it to never bring back a session that another request ended meanwhile.
   */
  destroy: (id: string, user?: string) => Promise<boolean | undefined | void>
}

type Callback<T> = (error?: unknown, value?: T) => void

/** The express-session / @fastify/session store interface, with callbacks or promises. */
export interface ExpressStoreLike {
  get: (sid: string, callback: Callback<any>) => unknown
  set: (sid: string, session: any, callback: Callback<void>) => unknown
  destroy: (sid: string, callback: Callback<void>) => unknown
  touch?: (sid: string, session: any, callback: Callback<void>) => unknown
}

const hasMethods = (value: unknown, names: string[]): boolean =>
  typeof value === 'object' && value !== null && names.every((name) => typeof (value as Record<string, unknown>)[name] === 'function')

export function isSessionStore (value: unknown): value is SessionStore {
  return hasMethods(value, ['get', 'put', 'touch', 'destroy'])
}

export function isExpressStore (value: unknown): value is ExpressStoreLike {
  return hasMethods(value, ['get', 'set', 'destroy'])
}
