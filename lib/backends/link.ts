// What a session does at once when the app waits for it (@fastify/session's save(), reload(),
// destroy(callback), regenerate(callback), sessionId), through its registration's backend and by
// the same rules the reply applies; and the session a token holds, for decorators.
import { nowSeconds } from '../fernet/fernet.js'
import { type SaveRules, type Session, type SessionLink, kDecide, kRebase } from '../session.js'
import type { SessionBackend } from './backend.js'

export class BackendLink implements SessionLink {
  readonly #rules: SaveRules
  #backend: SessionBackend | undefined

  constructor (rules: SaveRules) {
    this.#rules = rules
  }

  /** The backend is made with the settings that carry this link, so it comes second. */
  bind (backend: SessionBackend): void {
    this.#backend = backend
  }

  async flush (session: Session): Promise<void> {
    const backend = this.#backend as SessionBackend
    const decision = session[kDecide](nowSeconds(), this.#rules)
    if (decision.action === 'keep') return
    if (decision.action === 'clear') {
      // The reply clears the cookie, and finds the record already deleted.
      await backend.end(session, decision.keysDeleted)
      return
    }
    const token = await backend.save(session, decision)
    // Not saved: ended by another request meanwhile. The session stays as it is, for the reply
    // to find it ended again and save nothing.
    if (typeof token !== 'string') return
    // Merged with another request's write: the session goes on from what is stored.
    session[kRebase](backend.persisted(session) ?? decision.json, decision.timestamp, { token, ttl: decision.ttl })
  }

  async reload (session: Session): Promise<string | null | undefined> {
    return await (this.#backend as SessionBackend).reload(session)
  }

  sessionId (session: Session, renewed: boolean): string | undefined {
    return (this.#backend as SessionBackend).sessionId(session, renewed)
  }
}

/** The session a token holds; a new, empty one when it holds none. Rejects only when a store fails. */
export async function sessionOfToken (backend: SessionBackend, token: string | undefined): Promise<Session> {
  const session = token === undefined ? backend.fresh() : await backend.open(token, nowSeconds())
  return typeof session === 'string' ? backend.fresh() : session
}

/**
 * @fastify/session's decryptSession(token, request, [cookieOptions,] callback): the session a
 * token holds, handed to `assign`, then the callback, once, with a store's failure if any.
 * Its cookie options (a lifetime in milliseconds, attributes) apply to this session.
 */
export function decryptInto (backend: SessionBackend, token: unknown, rest: unknown[], assign: (session: Session) => void): void {
  const callback = rest.at(-1)
  if (typeof callback !== 'function') throw new TypeError('decryptSession(token, request, [cookieOptions,] callback) needs a callback')
  const cookieOptions = rest.length > 1 ? rest[0] : undefined
  sessionOfToken(backend, typeof token === 'string' ? token : undefined).then((session) => {
    if (typeof cookieOptions === 'object' && cookieOptions !== null) Object.assign(session.cookie, cookieOptions)
    assign(session)
  }).then(() => { callback(null) }, callback as (error: unknown) => void)
}
