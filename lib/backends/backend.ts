// lib/backends/: where a session lives (in the cookie, or in a store) behind one interface, the
// one index.ts's hooks use. It may import fernet/, stores/'s interface and session.ts; nothing of
// Fastify, so a backend can be driven without a server.
// What the plugin's hooks need of a backend: the cookie backend keeps the session in the cookie
// (cookie.ts), the store backend keeps it in a store with only a token of its id in
// the cookie (store.ts). The hooks in index.ts are the same for both.
import type { DecryptOptions, FernetBase, InvalidTokenReason } from '../fernet/fernet.js'
import { parsePythonJson } from './python-json.js'
import { type SaveAction, type Session, type SessionRecord, type SessionSettings, lifetimeOf } from '../session.js'
import type { StoreRefusal } from '../stores/store.js'

/** Why a cookie gave a fresh session instead of its data; logged at debug level. */
export type SessionFailure =
  | InvalidTokenReason
  | 'not-utf8'
  | 'not-json'
  | 'forbidden-key' // __proto__ or constructor.prototype, which could pollute prototypes
  | 'not-object'
  | 'lifetime-exceeded'
  | 'not-an-id' // an authentic token that holds no session id (store mode)
  | 'no-record' // the store has no record for the id: expired, deleted or revoked
  | 'foreign-record' // the record holds another session's data (copied there by whoever can write the store)
  | 'revoked' // made under a generation its user's revocation record no longer holds

/** What a save gives the cookie: a new token, null to clear it, undefined to leave it as it is. */
export type CookieUpdate = string | null | undefined

export interface SessionBackend {
  /** A new, empty session. */
  fresh: (hadBadCookie?: boolean) => Session
  /** The session a remembered token holds, at once; undefined when open() must be asked. */
  lookup: (token: string, now: number) => Session | SessionFailure | undefined
  /** The session a cookie's token holds, or why it holds none. Rejects only when a store fails. */
  open: (token: string, now: number) => Promise<Session | SessionFailure>
  /** Saves or renews the session, and gives what its cookie becomes. */
  save: (session: Session, action: SaveAction) => Promise<CookieUpdate>
  /**
   * Ends a session the app emptied (a store deletes its record) and tells whether it ended: one
   * emptied by deleting keys lives on in a store when another request added keys meanwhile.
   * Undefined: it ended, with nothing to wait for.
   */
  end: (session: Session, keysDeleted: boolean) => Promise<boolean> | undefined
  /** A token for data given outside a request (encodeSession). */
  encode: (data: SessionRecord, now: number) => Promise<string>
  /**
   * Ends every session of a user made before the call, but `except` (re-issued under the new
   * generation). Needs a store (store mode, or cookie mode with a revocation store).
   */
  revoke: (userId: string | number, except: Session | undefined) => Promise<void>
  /** The id a store keeps the session under (a new one once renewed); undefined in the cookie. */
  sessionId: (session: Session, renewed: boolean) => string | undefined
  /** The JSON last saved for the session, as stored now; null: gone; undefined: the session's own. */
  reload: (session: Session) => Promise<string | null | undefined>
  /** The JSON a save just wrote, when it differs from the session's (merged with other writers). */
  persisted: (session: Session) => string | undefined
}

/**
 * The store could not be reached in time, or failed: the request is answered 503. The reason
 * (a driver's message may name hosts and database users) is the error's cause: in the log, not
 * in the reply.
 */
export class SessionStoreError extends Error {
  readonly statusCode = 503
  readonly code = 'FST_SESSION_STORE_UNAVAILABLE'

  constructor (operation: string, reason: unknown) {
    super(`fastify-encrypted-session: the session store is unavailable (${operation})`, { cause: reason instanceof Error ? reason : new Error(String(reason)) })
    this.name = 'SessionStoreError'
  }
}

/**
 * The store is up but would not keep the session: larger than its whole bound (500: the app's
 * data, which no retry fixes) or no room a session without a login may take (503, until
 * sessions expire). Said as such, not as an outage; the message gives sizes and bounds, never
 * the data.
 */
export class SessionNotStoredError extends Error {
  readonly statusCode: number
  readonly code: string

  constructor (refusal: StoreRefusal) {
    const tooLarge = refusal.reason === 'too-large'
    super(`fastify-encrypted-session: the session was not saved, ${tooLarge ? 'it is too large for the store' : 'the store is full'} (${refusal.message})`, { cause: refusal })
    this.name = 'SessionNotStoredError'
    this.statusCode = tooLarge ? 500 : 503
    this.code = tooLarge ? 'FST_SESSION_TOO_LARGE_FOR_STORE' : 'FST_SESSION_STORE_FULL'
  }
}

/** The session is larger than the cookie can carry: not saved, logged by the plugin. */
export class SessionTooLarge extends Error {
  constructor (readonly size: number, readonly maxSessionSize: number) {
    super(`the session token would be ${size} characters, more than maxSessionSize (${maxSessionSize})`)
    this.name = 'SessionTooLarge'
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** A token's text once its MAC verified, with its time and key, or why it is refused. */
export async function openText (fernet: FernetBase, token: string, options: Omit<DecryptOptions, 'onInvalid'> = {}): Promise<{ text: string, timestamp: number, keyIndex: number } | SessionFailure> {
  let reason: InvalidTokenReason = 'malformed'
  let opened
  try {
    opened = await fernet.decryptDetailed(token, { ...options, onInvalid: (why) => { reason = why } })
  } catch {
    return reason
  }
  try {
    return { text: utf8.decode(opened.plaintext), timestamp: opened.timestamp, keyIndex: opened.keyIndex }
  } catch {
    return 'not-utf8'
  }
}

/**
 * Session data from JSON text, read as Python reads it (NaN and the infinities too), or why the
 * text holds none; refuses what could pollute prototypes.
 */
export function parseSessionJson (text: string): SessionRecord | SessionFailure {
  let data: unknown
  try {
    data = parsePythonJson(text)
  } catch (error) {
    return /forbidden/i.test((error as Error).message) ? 'forbidden-key' : 'not-json'
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return 'not-object'
  return data as SessionRecord
}

/** The rules of a session's life, as both backends apply them to a token's time. */
export interface LifetimeRules {
  settings: SessionSettings
  absoluteLifetime: number | undefined
  createdKey: string
}

/** Why a session issued at `timestamp` is over at `now`: its own lifetime, or the absolute one. */
export function lifetimeProblem (data: SessionRecord, timestamp: number, now: number, rules: LifetimeRules): SessionFailure | undefined {
  if (now - timestamp > lifetimeOf(data, rules.settings)) return 'expired'
  const created = data[rules.createdKey]
  if (rules.absoluteLifetime !== undefined && typeof created === 'number' && now - created > rules.absoluteLifetime) return 'lifetime-exceeded'
  return undefined
}
