// A session token too long for one cookie is split across `name.0`, `name.1`, ... and joined
// again on read. A token that fits stays one plain cookie, which Python apps read as it is.

/** Browsers keep a cookie of at most 4,096 bytes, name, value and attributes together. */
export const MAX_COOKIE_BYTES = 4095

export type CookieJar = Readonly<Record<string, string | undefined>>

/** What a request brought of one session's cookies. */
export interface IncomingCookies {
  /** The token: the plain cookie if present, else the chunks joined; undefined if neither. */
  token: string | undefined
  hasPlain: boolean
  /** How many chunks `name.0` ... `name.N-1` came. */
  chunks: number
}

export function chunkName (name: string, index: number): string {
  return `${name}.${index}`
}

export function readSessionCookies (cookies: CookieJar, name: string): IncomingCookies {
  let chunks = 0
  let joined = ''
  for (let part = cookies[chunkName(name, 0)]; part !== undefined; part = cookies[chunkName(name, chunks)]) {
    joined += part
    chunks++
  }
  const plain = cookies[name]
  return { token: plain ?? (chunks > 0 ? joined : undefined), hasPlain: plain !== undefined, chunks }
}

/** Splits a token into pieces of at most `size` characters (at least one piece). */
export function splitToken (token: string, size: number): string[] {
  const pieces: string[] = []
  for (let offset = 0; offset < token.length; offset += size) pieces.push(token.slice(offset, offset + size))
  return pieces
}
