// MemoryStore seen as an express-session / @fastify/session store: get/set/destroy/touch with
// callbacks, on an EventEmitter (or on express-session's own Store class, which express-session
// itself needs for createSession()). Its records live among the MemoryStore's own, under the
// same bounds and the same rule: a session with a logged-in user is guarded, any other is
// anonymous and goes first. They are kept apart by their ids (`express.` + sid), so the plugin's
// sessions and revocation records never meet them.
import { EventEmitter } from 'node:events'

type Callback<T> = (error?: unknown, value?: T) => void

/** A session as express-session and @fastify/session hand it to a store. */
export interface ExpressSessionLike {
  cookie?: { expires?: Date | string | number | null, maxAge?: number | null, originalMaxAge?: number | null, [attribute: string]: unknown }
  [key: string]: unknown
}

export interface MemoryExpressStoreOptions {
  /**
   * The class the view extends: express-session's `session.Store` (express-session calls its
   * createSession()); default EventEmitter, which is all @fastify/session needs.
   */
  Store?: new () => EventEmitter
  /**
   * Whether a session has a logged-in user, which guards it against anonymous traffic; default:
   * a passport user (`session.passport.user`, express-session's and @fastify/passport's place).
   */
  loggedIn?: (session: ExpressSessionLike) => boolean
  /** Milliseconds a session whose cookie has no expiry is kept; default 86,400,000 (a day). */
  ttl?: number
}

/** The express-session Store API over a MemoryStore's records. */
export interface MemoryExpressStore extends EventEmitter {
  get: (sid: string, callback: Callback<ExpressSessionLike | null>) => void
  set: (sid: string, session: ExpressSessionLike, callback?: Callback<void>) => void
  destroy: (sid: string, callback?: Callback<void>) => void
  touch: (sid: string, session: ExpressSessionLike, callback?: Callback<void>) => void
}

/** What the view needs of the MemoryStore: its records, by id, live only. */
export interface MemoryRecords {
  read: (id: string) => string | undefined
  /** Throws a StoreRefusal when the record may not be kept. */
  write: (id: string, data: string, ttl: number, guarded: boolean) => void
  remove: (id: string) => void
}

const ID_PREFIX = 'express.'
const DEFAULT_TTL = 86_400_000

const passportUser = (session: ExpressSessionLike): boolean => {
  const passport = session.passport as { user?: unknown } | null | undefined
  return passport?.user !== undefined && passport.user !== null
}

/** Milliseconds the session has left by its cookie (express-session's rule), or the default. */
function ttlOf (session: ExpressSessionLike, fallback: number): number {
  const { expires, maxAge, originalMaxAge } = session.cookie ?? {}
  if (expires !== undefined && expires !== null) return new Date(expires).getTime() - Date.now()
  const age = maxAge ?? originalMaxAge
  return typeof age === 'number' ? age : fallback
}

export function memoryExpressStore (records: MemoryRecords, options: MemoryExpressStoreOptions = {}): MemoryExpressStore {
  const { Store = EventEmitter, loggedIn = passportUser, ttl = DEFAULT_TTL } = options
  if (typeof Store !== 'function') throw new TypeError('MemoryStore.expressStore: Store must be a class, such as express-session\'s session.Store')
  if (typeof loggedIn !== 'function') throw new TypeError('MemoryStore.expressStore: loggedIn must be a function')
  if (!Number.isSafeInteger(ttl) || ttl < 1) throw new TypeError('MemoryStore.expressStore: ttl must be a whole number of milliseconds, 1 or more')

  /** Writes a session, or drops it when its cookie has already expired. */
  const save = (sid: string, session: ExpressSessionLike): void => {
    const left = ttlOf(session, ttl)
    // NaN (an unreadable date) keeps nothing either: a session is never kept past its cookie.
    if (!(left > 0)) records.remove(ID_PREFIX + sid)
    else records.write(ID_PREFIX + sid, JSON.stringify(session), left, loggedIn(session))
  }

  /** Runs one store operation and calls back exactly once, with its error or its value. */
  const answer = <T>(callback: Callback<T> | undefined, run: () => T): void => {
    let value: T
    try {
      value = run()
    } catch (error) {
      callback?.(error)
      return
    }
    callback?.(null, value)
  }

  const Base: new () => EventEmitter = Store
  class MemoryExpressStoreView extends Base implements MemoryExpressStore {
    get (sid: string, callback: Callback<ExpressSessionLike | null>): void {
      answer(callback, () => {
        const data = records.read(ID_PREFIX + sid)
        return data === undefined ? null : JSON.parse(data) as ExpressSessionLike
      })
    }

    set (sid: string, session: ExpressSessionLike, callback?: Callback<void>): void {
      answer(callback, () => { save(sid, session) })
    }

    destroy (sid: string, callback?: Callback<void>): void {
      answer(callback, () => { records.remove(ID_PREFIX + sid) })
    }

    /** Renews a stored session by the cookie given (as express-session's MemoryStore does). */
    touch (sid: string, session: ExpressSessionLike, callback?: Callback<void>): void {
      answer(callback, () => {
        const data = records.read(ID_PREFIX + sid)
        if (data === undefined) return
        const stored = JSON.parse(data) as ExpressSessionLike
        stored.cookie = session.cookie
        save(sid, stored)
      })
    }
  }
  return new MemoryExpressStoreView()
}
