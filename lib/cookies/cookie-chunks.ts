// A session token too long for one cookie is split across `name.0`, `name.1`, ... and joined
// again on read. A token that fits stays one plain cookie, which Python apps read as it is.

/** Browsers keep a cookie of at most 4,096 bytes, name, value and attributes together. */
export const MAX_COOKIE_BYTES = 4095

/**
 * What a browser keeps of one cookie, name and value together (Chrome and Firefox refuse more):
 * the most a cookie can bring back, whoever wrote it.
 */
export const MAX_COOKIE_PAIR_BYTES = 4096

export type CookieJar = Readonly<Record<string, string | undefined>>

export function chunkName (name: string, index: number): string {
  return `${name}.${index}`
}

/** Whether two cookie names would step on each other's cookies or chunks. */
export function cookieNamesClash (a: string, b: string): boolean {
  const [shorter, longer] = a.length <= b.length ? [a, b] : [b, a]
  return shorter === longer || (longer.startsWith(`${shorter}.`) && /^\d+$/.test(longer.slice(shorter.length + 1)))
}

/**
 * RFC 6265 lets a cookie value stand in double quotes, and Python frameworks write them (Sanic
 * quotes every token ending in '='); browsers send the quotes back. The token is what is inside.
 */
function unquote (value: string | undefined): string | undefined {
  return value !== undefined && value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value
}

/**
 * The session token a request brought: the plain cookie if present, else the chunks from
 * `name.0` on, joined (only the unbroken run from `name.0`, so a gap gives a token that fails);
 * undefined when nothing came. Only own properties count: a parsed cookie object may
 * be a plain {}, whose prototype has a `constructor` and a `toString`.
 */
export function readSessionCookies (cookies: CookieJar | null | undefined, name: string, maxChunks: number): string | undefined {
  const read = (key: string): string | undefined => cookies != null && Object.hasOwn(cookies, key) ? unquote(cookies[key]) : undefined
  const plain = read(name)
  if (plain !== undefined) return plain
  let joined = ''
  let count = 0
  for (let index = 0; index < maxChunks; index++) {
    const part = read(chunkName(name, index))
    if (part === undefined) continue
    // Only the unbroken run from name.0 makes the token; a gap leaves one that fails.
    if (count === index) joined += part
    count++
  }
  return count === 0 ? undefined : joined
}

/** Splits a token into pieces of at most `size` characters (at least one piece). */
export function splitToken (token: string, size: number): string[] {
  const pieces: string[] = []
  for (let offset = 0; offset < token.length; offset += size) pieces.push(token.slice(offset, offset + size))
  return pieces
}
