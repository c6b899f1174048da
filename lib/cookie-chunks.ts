// A session token too long for one cookie is split across `name.0`, `name.1`, ... and joined
// again on read. A token that fits stays one plain cookie, which Python apps read as it is.

/** Browsers keep a cookie of at most 4,096 bytes, name, value and attributes together. */
export const MAX_COOKIE_BYTES = 4095

export type CookieJar = Readonly<Record<string, string | undefined>>

/** What a request brought of one session's cookies. */
export interface IncomingCookies {
  /**
   * The token: the plain cookie if present, else the chunks from `name.0` on, joined; '' (which
   * no decoder accepts) when chunks came without `name.0`; undefined when nothing came.
   */
  token: string | undefined
  hasPlain: boolean
  /** Indices of the chunk cookies that came, below the chunk limit. */
  chunks: number[]
}

export const NO_COOKIES: IncomingCookies = Object.freeze({ token: undefined, hasPlain: false, chunks: Object.freeze([]) as unknown as number[] })

export function chunkName (name: string, index: number): string {
  return `${name}.${index}`
}

/** Whether two cookie names would step on each other's cookies or chunks. */
export function cookieNamesClash (a: string, b: string): boolean {
  const [shorter, longer] = a.length <= b.length ? [a, b] : [b, a]
  return shorter === longer || (longer.startsWith(`${shorter}.`) && /^\d+$/.test(longer.slice(shorter.length + 1)))
}

/**
 * Reads the plain cookie and at most `maxChunks` chunks. Only own properties count: a parsed
 * cookie object may be a plain {}, whose prototype has a `constructor` and a `toString`.
 */
export function readSessionCookies (cookies: CookieJar | null | undefined, name: string, maxChunks: number): IncomingCookies {
  const read = (key: string): string | undefined => cookies != null && Object.hasOwn(cookies, key) ? cookies[key] : undefined
  const chunks: number[] = []
  let joined = ''
  for (let index = 0; index < maxChunks; index++) {
    const part = read(chunkName(name, index))
    if (part === undefined) continue
    // Only the unbroken run from name.0 makes the token; a gap leaves a token that fails.
    if (chunks.length === index) joined += part
    chunks.push(index)
  }
  const plain = read(name)
  if (plain !== undefined) return { token: plain, hasPlain: true, chunks }
  if (chunks.length === 0) return NO_COOKIES
  return { token: chunks[0] === 0 ? joined : '', hasPlain: false, chunks }
}

/** Splits a token into pieces of at most `size` characters (at least one piece). */
export function splitToken (token: string, size: number): string[] {
  const pieces: string[] = []
  for (let offset = 0; offset < token.length; offset += size) pieces.push(token.slice(offset, offset + size))
  return pieces
}
