// Property and fuzz tests through the whole plugin (app.inject, and a real listening server for
// what only Node's HTTP parser decides): whatever arrives in the Cookie header, the route runs
// and answers 2xx with either the one session the cookie really holds or a fresh, empty session
// (or the HTTP layer refuses the request with a clear 4xx); never a 5xx, never a log at error
// (or even warn) level, never the token in a log line, never data of another session.
//
// Seeded and reproducible: FUZZ_SEED picks the seed (printed below); the key, the IVs and the
// clock are derived from it or fixed, so a run makes the same tokens and the same cases.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import FakeTimers from '@sinonjs/fake-timers'
import { isDeepStrictEqual } from 'node:util'
import type { FastifyInstance } from 'fastify'
import { Fernet, encryptFromParts } from '../lib/fernet/fernet.js'
import { buildApp, isCleared, setCookie, type LogLine } from './helpers/app.js'
import { rawRequest } from './helpers/raw-http.js'

const SEED = Number(process.env.FUZZ_SEED ?? 20_251_122)
if (!Number.isSafeInteger(SEED)) throw new Error(`FUZZ_SEED must be an integer, not ${String(process.env.FUZZ_SEED)}`)
// FUZZ_SCALE multiplies the number of generated cases (not the exhaustive ones), e.g. 10 for
// a longer hunt on a developer's machine.
const SCALE = Number(process.env.FUZZ_SCALE ?? 1)
if (!(SCALE >= 1)) throw new Error(`FUZZ_SCALE must be a number, 1 or more, not ${String(process.env.FUZZ_SCALE)}`)
const runs = (n: number): number => Math.max(1, Math.round(n * SCALE))
t.comment(`fast-check seed ${SEED} (FUZZ_SEED=${SEED} replays this run), FUZZ_SCALE ${SCALE}`)
// Well under this on 2 cores; the margin is for a loaded CI machine running files in parallel.
t.setTimeout(240_000)

const T0 = 1_750_000_000
const clock = FakeTimers.install({ now: T0 * 1000, toFake: ['Date'] })
t.teardown(() => clock.uninstall())

const URL_SAFE = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const STANDARD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const WRITE_KEY = 'fuzz:written'

type Data = Record<string, unknown>
type Expect = { kind: 'same', data: Data } | { kind: 'fresh', sent: boolean }
interface Known { name: string, token: string, data: Data }
interface Tally { cases: number, same: number, fresh: number, refused: number }

const seeded = <T>(arbitrary: fc.Arbitrary<T>, offset: number, count: number): T[] => fc.sample(arbitrary, { seed: SEED + offset, numRuns: count })
const bytes = (length: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: length, maxLength: length })

const KEY = Buffer.from(seeded(bytes(32), 1, 1)[0] as Uint8Array).toString('base64url') + '='
const OTHER_KEY = Buffer.from(seeded(bytes(32), 2, 1)[0] as Uint8Array).toString('base64url') + '='
const IVS = seeded(bytes(16), 3, 16)
const fernet = new Fernet(KEY)
const otherFernet = new Fernet(OTHER_KEY)

/** A token of `plaintext` at T0, with the n-th seeded IV: the same token on every run. */
async function tokenOf (plaintext: string | Uint8Array, n: number, under = fernet): Promise<string> {
  const data = typeof plaintext === 'string' ? new TextEncoder().encode(plaintext) : plaintext
  return await under[encryptFromParts](data, T0, IVS[n % IVS.length] as Uint8Array)
}

/**
 * Whether the plugin must read `value` as `token`: the same bytes in url-safe base64 with correct
 * or absent `=` padding (as the README promises). Written independently of lib/fernet/base64.ts. Bits
 * below the last full byte are not part of the bytes, so a last letter differing only in them
 * is the same token (Python's base64 decoder reads it the same way).
 */
function equivalent (value: string, token: string): boolean {
  const match = /^([A-Za-z0-9_-]*)(=*)$/.exec(value)
  if (match === null) return false
  const letters = match[1] as string
  const padding = (match[2] as string).length
  if (letters.length % 4 === 1 || padding > 2) return false
  if (padding > 0 && (letters.length + padding) % 4 !== 0) return false
  return Buffer.from(letters, 'base64url').equals(Buffer.from(token, 'base64url'))
}

function describe (header: string): string {
  const shown = header.length > 160 ? `${header.slice(0, 160)}...` : header
  return `Cookie ${JSON.stringify(shown)} (${header.length} chars)`
}

function replaceAt (text: string, index: number, replacement: string): string {
  return text.slice(0, index) + replacement + text.slice(index + 1)
}

const tallies = new Map<string, Tally>()
function tally (category: string): Tally {
  let entry = tallies.get(category)
  if (entry === undefined) {
    entry = { cases: 0, same: 0, fresh: 0, refused: 0 }
    tallies.set(category, entry)
  }
  return entry
}

let app: FastifyInstance
let logs: LogLine[]
let rawLogs: string[]
let known: Known[] = []
let probes = 0

/**
 * Chunks the plugin reads: ceil(maxSessionSize / the room in one chunk cookie), which is
 * ceil(12,800 / about 4,000) = 4 with the maxSessionSize used here (chunks are opt-in).
 */
const MAX_CHUNKS = 4

/**
 * The session token a Cookie header carries, read with the cookie layer's own parser: the
 * cookie `session`; or else the chunks `session.0` ... `session.3` joined up to the first one
 * missing, or '' (no token at all) when `session.0` is missing. Also which chunks came.
 */
function sessionValue (header: string): { value: string | undefined, chunks: number[] } {
  const jar = app.parseCookie(header)
  const chunks: number[] = []
  let joined = ''
  for (let index = 0; index < MAX_CHUNKS; index++) {
    const part = jar[`session.${index}`]
    if (part === undefined) continue
    if (chunks.length === index) joined += part
    chunks.push(index)
  }
  if (jar.session !== undefined) return { value: jar.session, chunks }
  if (chunks.length === 0) return { value: undefined, chunks }
  return { value: chunks[0] === 0 ? joined : '', chunks }
}

/** What the plugin must make of this Cookie header. */
function expectFor (header: string): Expect {
  const { value } = sessionValue(header)
  if (value === undefined) return { kind: 'fresh', sent: false }
  for (const entry of known) {
    if (equivalent(value, entry.token)) return { kind: 'same', data: entry.data }
  }
  return { kind: 'fresh', sent: true }
}

async function plaintextOf (token: string): Promise<unknown> {
  return JSON.parse(new TextDecoder().decode(await fernet.decrypt(token)))
}

/**
 * Sends one request with this Cookie header and checks everything about the answer; returns
 * what was wrong, or undefined. Every fifth request goes to a route that also writes to the
 * session, to see that the cookie it gets holds nothing but the data it should.
 */
async function probe (category: string, header: string, expect: Expect = expectFor(header)): Promise<string | undefined> {
  const write = probes++ % 5 === 0
  logs.length = 0
  rawLogs.length = 0
  const response = await app.inject({ method: 'GET', url: write ? '/write' : '/whoami', headers: { cookie: header } })
  const counts = tally(category)
  counts.cases++
  counts[expect.kind]++
  const problems: string[] = []
  if (response.statusCode !== 200) problems.push(`status ${response.statusCode}`)
  for (const line of logs) {
    if (line.level >= 40) problems.push(`a log line at level ${line.level}: ${line.msg}`)
  }
  const { value, chunks } = sessionValue(header)
  if (value !== undefined && value.length >= 8 && rawLogs.some((line) => line.includes(value))) problems.push('the cookie value was logged')
  let body: { isNew?: unknown, data?: unknown } = {}
  try {
    body = response.json()
  } catch {
    problems.push(`body is not JSON: ${response.body.slice(0, 200)}`)
  }
  const cookie = setCookie(response)
  if (expect.kind === 'same') {
    if (body.isNew !== false) problems.push('the session the cookie holds was not opened')
    if (!isDeepStrictEqual(body.data, expect.data)) problems.push(`data ${JSON.stringify(body.data)}, expected ${JSON.stringify(expect.data)}`)
    const written = { ...expect.data, [WRITE_KEY]: true }
    if (write && !isDeepStrictEqual(written, expect.data)) {
      if (cookie === undefined) problems.push('no cookie after a write')
      else if (!isDeepStrictEqual(await plaintextOf(cookie.value), written)) problems.push('the written cookie holds other data')
    } else if (Object.keys(expect.data).length === 0) {
      // An authentic token of {}: an existing but empty session, which is not stored.
      if (!isCleared(cookie)) problems.push('the cookie of an empty session was not cleared')
    } else if (cookie !== undefined) {
      problems.push(`a Set-Cookie for an unchanged, current session: ${JSON.stringify(cookie.value.slice(0, 40))}`)
    }
  } else {
    if (body.isNew !== true) problems.push('not a new session')
    if (!isDeepStrictEqual(body.data, {})) problems.push(`a fresh session holds data: ${JSON.stringify(body.data)}`)
    if (write) {
      if (cookie === undefined) problems.push('no cookie after a write')
      else if (!isDeepStrictEqual(await plaintextOf(cookie.value), { [WRITE_KEY]: true })) problems.push(`the new session's cookie holds other data: ${JSON.stringify(await plaintextOf(cookie.value))}`)
    } else if (expect.sent) {
      if (!isCleared(cookie)) problems.push('the bad cookie was not cleared')
      for (const index of chunks) {
        if (!isCleared(setCookie(response, `session.${index}`))) problems.push(`the bad chunk session.${index} was not cleared`)
      }
      const ignored = logs.filter((line) => line.level === 20 && /session cookie ignored/.test(line.msg))
      if (ignored.length !== 1 || typeof ignored[0]?.reason !== 'string') problems.push(`expected one debug line with the reason, got ${JSON.stringify(ignored)}`)
    } else if (cookie !== undefined) {
      problems.push('a Set-Cookie although no session cookie came')
    }
  }
  return problems.length === 0 ? undefined : `${describe(header)}: ${problems.join('; ')}`
}

/** Probes every header; one assertion for the lot, listing the first failures. */
async function exhaustive (t: Test, category: string, headers: Iterable<string>): Promise<void> {
  const failures: string[] = []
  let count = 0
  for (const header of headers) {
    count++
    const problem = await probe(category, header)
    if (problem !== undefined) failures.push(problem)
  }
  t.same(failures.slice(0, 10), [], `${category}: ${count} cases, ${failures.length} failed`)
}

let seedOffset = 100
/** A fast-check property over Cookie headers, each checked by probe(); shrinks on failure. */
async function property (t: Test, category: string, arbitrary: fc.Arbitrary<string>, numRuns: number): Promise<void> {
  const before = tally(category).cases
  const seed = SEED + seedOffset++
  await fc.assert(fc.asyncProperty(arbitrary, async (header) => {
    const problem = await probe(category, header)
    if (problem !== undefined) throw new Error(problem)
  }), { seed, numRuns: runs(numRuns) })
  t.ok(tally(category).cases - before >= runs(numRuns), `${category}: ${runs(numRuns)} generated cases pass (seed ${seed})`)
}

t.before(async () => {
  ({ app, logs, rawLogs } = await buildApp({ key: KEY, maxSessionSize: 12_800 }, (app) => {
    app.get('/whoami', async (request) => ({ isNew: request.session.isNew, data: request.session.data() }))
    app.get('/write', async (request) => {
      const before = { isNew: request.session.isNew, data: request.session.data() }
      request.session.set(WRITE_KEY, true)
      return before
    })
  }))
  const make = async (name: string, data: Data, n: number): Promise<Known> => ({ name, data, token: await tokenOf(JSON.stringify(data), n) })
  // 73, 89 and 105 bytes: two, one and no '=' of padding, so every padding state is covered.
  known = [
    await make('victim-100', { u: 'victim' }, 0),
    await make('victim-120', { owner: 'victim', n: 1 }, 1),
    await make('victim-140', { owner: 'victim', role: 'admin', n: 1 }, 2),
    await make('other', { owner: 'other', n: 2 }, 3),
    await make('victim-3.9k', { owner: 'victim', blob: 'x'.repeat(2828) }, 4)
  ]
})

t.teardown(async () => { await app?.close() })

const victim = (length: number): Known => known.find((entry) => entry.name === `victim-${length}`) as Known
const bigToken = (): Known => known.find((entry) => entry.name === 'victim-3.9k') as Known
const session = (value: string): string => `session=${value}`

t.test('the tokens under test open as their sessions', async (t) => {
  t.same(known.map((entry) => entry.token.length), [100, 120, 140, 120, 3896], 'token lengths')
  t.same(known.slice(0, 3).map((entry) => /=*$/.exec(entry.token)?.[0].length), [2, 1, 0], 'padding: two, one and none')
  t.ok(known.slice(0, 3).some((entry) => /[-_]/.test(entry.token)), 'a token with - or _, so standard base64 differs from url-safe')
  for (const entry of known) {
    t.equal(await probe('valid tokens', session(entry.token), { kind: 'same', data: entry.data }), undefined, entry.name)
  }
  t.equal(await probe('valid tokens', 'other=1', { kind: 'fresh', sent: false }), undefined, 'no session cookie')
})

t.test('every single-character change of a token, at every position', async (t) => {
  // All 255 other code units 0x00-0xFF at every position of the 120-character token.
  const token = victim(120).token
  function * everyByte (): Generator<string> {
    for (let position = 0; position < token.length; position++) {
      for (let code = 0; code < 256; code++) {
        if (code !== token.charCodeAt(position)) yield session(replaceAt(token, position, String.fromCharCode(code)))
      }
    }
  }
  await exhaustive(t, 'single-character change', everyByte())
  // The other two paddings: every position, 12 replacements each drawn by fast-check from 0x00-0xFF.
  for (const [offset, length] of [[10, 100], [11, 140]] as const) {
    const other = victim(length).token
    const picks = seeded(fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { minLength: 12, maxLength: 12 }), offset, other.length)
    function * sampled (): Generator<string> {
      for (let position = 0; position < other.length; position++) {
        for (const code of picks[position] as number[]) {
          if (code !== other.charCodeAt(position)) yield session(replaceAt(other, position, String.fromCharCode(code)))
        }
      }
    }
    await exhaustive(t, 'single-character change', sampled())
  }
  const equivalents = tally('single-character change').same
  t.comment(`of these, ${equivalents} read as the same token: '=' turned into a cookie separator or blank, or a last letter differing only in bits below the last byte`)
})

t.test('every bit of every decoded byte flipped', async (t) => {
  function * flips (): Generator<string> {
    for (const entry of known.slice(0, 3)) {
      const decoded = Buffer.from(entry.token, 'base64url')
      for (let index = 0; index < decoded.length; index++) {
        for (let bit = 0; bit < 8; bit++) {
          const changed = Buffer.from(decoded)
          changed[index] = (changed[index] as number) ^ (1 << bit)
          yield session(changed.toString('base64url'))
        }
      }
    }
  }
  await exhaustive(t, 'bit flip in decoded token', flips())
  t.equal(tally('bit flip in decoded token').same, 0, 'no flipped token opens')
})

t.test('every truncation, from either end', async (t) => {
  function * truncations (): Generator<string> {
    for (const entry of known.slice(0, 3)) {
      for (let length = 0; length < entry.token.length; length++) {
        yield session(entry.token.slice(0, length))
        yield session(entry.token.slice(entry.token.length - length))
      }
    }
  }
  await exhaustive(t, 'truncation', truncations())
  t.equal(tally('truncation').same, 2, 'only the two padded tokens with their padding cut off still open')
})

t.test('random strings and tokens in every base64 flavour', async (t) => {
  const flavours = {
    'url-safe, padded': (b: Uint8Array) => Buffer.from(b).toString('base64url').padEnd(Math.ceil(b.length / 3) * 4, '='),
    'url-safe, unpadded': (b: Uint8Array) => Buffer.from(b).toString('base64url'),
    'standard, padded': (b: Uint8Array) => Buffer.from(b).toString('base64'),
    'standard, unpadded': (b: Uint8Array) => Buffer.from(b).toString('base64').replace(/=+$/, '')
  }
  // The real tokens in each flavour: url-safe opens with or without padding; the standard
  // alphabet is refused (README: only the url-safe alphabet is read), unless it is identical.
  for (const entry of known.slice(0, 3)) {
    const decoded = Buffer.from(entry.token, 'base64url')
    for (const [flavour, encode] of Object.entries(flavours)) {
      const value = encode(decoded)
      const expect: Expect = flavour.startsWith('url-safe') || !/[+/]/.test(value) ? { kind: 'same', data: entry.data } : { kind: 'fresh', sent: true }
      t.equal(await probe('base64 flavours', session(value), expect), undefined, `${entry.name}, ${flavour}`)
    }
  }
  // Random bytes with the shape of a token (version byte, lengths of 57 + 16k bytes): they get
  // as far as the MAC check.
  const tokenShaped = fc.tuple(fc.integer({ min: 1, max: 12 }), fc.boolean(), fc.constantFrom(...Object.values(flavours)))
    .chain(([blocks, version, encode]) => bytes(57 + 16 * blocks).map((b) => {
      if (version) b[0] = 0x80
      return session(encode(b))
    }))
  await property(t, 'base64 flavours', tokenShaped, 1200)
  // Real tokens of random data under another key, in each flavour.
  const foreign = fc.tuple(fc.string({ maxLength: 100 }), fc.constantFrom(...Object.values(flavours)))
  await fc.assert(fc.asyncProperty(foreign, async ([text, encode]) => {
    const token = await otherFernet.encryptAtTime(JSON.stringify({ text }), T0)
    const problem = await probe('base64 flavours', session(encode(Buffer.from(token, 'base64url'))))
    if (problem !== undefined) throw new Error(problem)
  }), { seed: SEED + seedOffset++, numRuns: runs(200) })
  // Random text over each alphabet, with '=' anywhere.
  const alphabets = [URL_SAFE, STANDARD, URL_SAFE + '=', STANDARD + '=', URL_SAFE + STANDARD + '=']
  const text = fc.constantFrom(...alphabets).chain((alphabet) => fc.string({ unit: fc.constantFrom(...alphabet), maxLength: 400 }))
    .chain((body) => fc.constantFrom('', '=', '==', '===').map((padding) => session(body + padding)))
  await property(t, 'base64 flavours', text, 1000)
})

const latin1Char = fc.integer({ min: 0, max: 255 }).map((code) => String.fromCharCode(code))
const latin1 = (maxLength: number): fc.Arbitrary<string> => fc.string({ unit: latin1Char, maxLength })

t.test('random latin1 strings', async (t) => {
  await property(t, 'latin1', latin1(400).map(session), 800)
  // Inside a real token, at a random place.
  const inside = fc.tuple(fc.constantFrom(...[100, 120, 140]), fc.nat(), latin1(20))
    .map(([length, at, inserted]) => {
      const token = victim(length).token
      const index = at % (token.length + 1)
      return session(token.slice(0, index) + inserted + token.slice(index))
    })
  await property(t, 'latin1', inside, 400)
  // As the whole Cookie header, name and all.
  await property(t, 'latin1', latin1(200), 300)
})

t.test('valid tokens with junk after the padding', async (t) => {
  const junk = fc.oneof(
    fc.string({ unit: fc.constantFrom(...URL_SAFE + '=+/.'), minLength: 1, maxLength: 50 }),
    latin1(50).filter((text) => text.length > 0),
    fc.constantFrom('=', '==', '.', ' x', '\u0000', '%00', '"', '!', '.sig', '|', '\\', '=' + 'A'.repeat(1000))
  )
  const arbitrary = fc.tuple(fc.constantFrom(...[100, 120, 140]), junk).map(([length, extra]) => session(victim(length).token + extra))
  await property(t, 'junk after padding', arbitrary, 1000)
})

t.test('oversized values', async (t) => {
  const big = bigToken()
  t.equal(await probe('oversized', session(big.token), { kind: 'same', data: big.data }), undefined, 'a real 3.9 KB session opens')
  for (const size of [3900, 4096, 8192, 16_384, 65_536, 65_537, 1_000_000]) {
    const value = 'A'.repeat(size)
    t.equal(await probe('oversized', session(value), { kind: 'fresh', sent: true }), undefined, `${size} characters of base64`)
  }
  const tooLarge = 'gAAAAA' + 'A'.repeat(65_537)
  await probe('oversized', session(tooLarge), { kind: 'fresh', sent: true })
  const reasons = logs.filter((line) => /session cookie ignored/.test(line.msg)).map((line) => line.reason)
  t.same(reasons, ['too-large'], 'over maxTokenLength: refused as too-large, before decoding')
  // Random token-shaped and random-letter values from 3 KB to 20 KB (inject() has no header limit).
  const sized = fc.tuple(fc.integer({ min: 3000, max: 20_000 }), fc.boolean()).chain(([size, shaped]) => shaped
    ? bytes(57 + 16 * Math.floor((size * 3 / 4 - 57) / 16)).map((b) => { b[0] = 0x80; return session(Buffer.from(b).toString('base64url')) })
    : fc.string({ unit: fc.constantFrom(...URL_SAFE), minLength: size, maxLength: size }).map(session))
  await property(t, 'oversized', sized, 60)
  // The real token with a 3.9 KB tail of padding-like junk.
  t.equal(await probe('oversized', session(big.token + '='.repeat(3900))), undefined, '3.9 KB token plus 3.9 KB of =')
})

t.test('many session cookies in one header', async (t) => {
  const cookiePart = fc.oneof(
    fc.constantFrom(...known.slice(0, 4)).map((entry) => `session=${entry.token}`),
    fc.constantFrom(...known.slice(0, 4)).chain((entry) => fc.nat({ max: entry.token.length - 1 }).map((at) => `session=${replaceAt(entry.token, at, entry.token[at] === 'A' ? 'B' : 'A')}`)),
    fc.string({ unit: fc.constantFrom(...URL_SAFE), maxLength: 80 }).map((value) => `session=${value}`),
    fc.constantFrom('session=', 'session', 'session= ', 'Session=x', 'SESSION=y', 'sessionx=z', ' session =w', 'a=b', '=', ';'),
    fc.constantFrom(...known.slice(0, 4)).map((entry) => `other_session=${entry.token}`)
  )
  const header = fc.tuple(fc.array(cookiePart, { minLength: 2, maxLength: 50 }), fc.constantFrom('; ', ';', ' ; ', ';;'))
    .map(([parts, separator]) => parts.join(separator))
  await property(t, 'many session cookies', header, 800)
  const counts = tally('many session cookies')
  t.ok(counts.same > 100 && counts.fresh > 100, `both outcomes were exercised (${counts.same} opened the first session cookie, ${counts.fresh} fresh)`)
  // The rule the oracle encodes: the first cookie named `session` counts, never a later one.
  const [a, b] = [victim(120), known.find((entry) => entry.name === 'other') as Known]
  t.equal(await probe('many session cookies', `session=${a.token}; session=${b.token}`, { kind: 'same', data: a.data }), undefined, 'first of two valid sessions')
  t.equal(await probe('many session cookies', `session=bad; session=${a.token}`, { kind: 'fresh', sent: true }), undefined, 'a valid session after a bad one is not used')
})

t.test('a token in chunks (session.0, session.1, ...), whole, partial, mixed with garbage', async (t) => {
  const chunked = fc.tuple(
    fc.constantFrom(...known.slice(0, 4), ...known.slice(0, 4), bigToken()),
    fc.array(fc.nat(), { maxLength: 5 }),
    fc.oneof(fc.constant('whole'), fc.constant('gap'), fc.constant('plain first'), fc.constant('garbage chunk'), fc.constant('extra chunk')),
    fc.nat(),
    fc.boolean()
  ).map(([entry, cutAt, variant, pick, shuffle]) => {
    const cuts = [...new Set(cutAt.map((at) => at % entry.token.length))].sort((a, b) => a - b)
    const pieces = [0, ...cuts, entry.token.length].flatMap((at, i, all) => i === 0 ? [] : [entry.token.slice(all[i - 1], at)]).filter((piece) => piece !== '')
    let parts = pieces.map((piece, index) => `session.${index}=${piece}`)
    if (variant === 'gap' && parts.length > 1) parts.splice(1 + pick % (parts.length - 1), 1)
    if (variant === 'plain first') parts.push(`session=${pick % 2 === 0 ? 'garbage' : (known[pick % 4] as Known).token}`)
    if (variant === 'garbage chunk') parts[pick % parts.length] = `session.${pick % parts.length}=${'Zz-'.repeat(pick % 7)}`
    if (variant === 'extra chunk') parts.push(`session.${parts.length}=${'A'.repeat(pick % 9)}`)
    if (shuffle) parts = parts.reverse()
    return parts.join('; ')
  })
  await property(t, 'chunked session cookies', chunked, 600)
  const many = fc.array(fc.tuple(fc.integer({ min: -1, max: 300 }), fc.string({ unit: fc.constantFrom(...URL_SAFE + '='), maxLength: 30 })), { minLength: 1, maxLength: 300 })
    .map((parts) => parts.map(([index, value]) => `session.${index}=${value}`).join('; '))
  await property(t, 'chunked session cookies', many, 200)
  const counts = tally('chunked session cookies')
  t.ok(counts.same > 50 && counts.fresh > 50, `both outcomes were exercised (${counts.same} opened the session the chunks hold, ${counts.fresh} fresh)`)
  const entry = victim(120)
  const split = (pieces: number): string => Array.from({ length: pieces }, (_, i) => {
    const size = Math.ceil(entry.token.length / pieces)
    return `session.${i}=${entry.token.slice(i * size, (i + 1) * size)}`
  }).join('; ')
  t.equal(await probe('chunked session cookies', split(MAX_CHUNKS), { kind: 'same', data: entry.data }), undefined, `a token in ${MAX_CHUNKS} chunks opens`)
  t.equal(await probe('chunked session cookies', split(MAX_CHUNKS + 1), { kind: 'fresh', sent: true }), undefined, `in ${MAX_CHUNKS + 1} chunks it does not: only ${MAX_CHUNKS} are read`)
  t.equal(await probe('chunked session cookies', `session.1=${entry.token}`, { kind: 'fresh', sent: true }), undefined, 'chunks without session.0: no token, and the chunk is cleared')
  t.equal(await probe('chunked session cookies', `session.${MAX_CHUNKS}=${entry.token}`, { kind: 'fresh', sent: false }), undefined, 'a chunk past the limit is not read at all')
})

t.test('percent-encoded garbage', async (t) => {
  const hex = '0123456789abcdefABCDEF'
  const escape = fc.oneof(
    fc.tuple(fc.constantFrom(...hex), fc.constantFrom(...hex)).map(([a, b]) => `%${a}${b}`),
    fc.constantFrom(...hex).map((a) => `%${a}`),
    fc.constantFrom('%', '%%', '%zz', '%G0', '%u0041', '%00', '%0A', '%0D', '%3B', '%3D', '%20', '%C0%80', '%ED%A0%80', '%FF', '%E2%82'),
    fc.constantFrom(...URL_SAFE)
  )
  await property(t, 'percent-encoded garbage', fc.array(escape, { maxLength: 120 }).map((parts) => session(parts.join(''))), 900)
  // Parts of a real token percent-encoded: the cookie layer decodes %XX before the plugin sees
  // the value, so a fully and correctly encoded token is the same token; anything else is not.
  const partly = fc.tuple(fc.constantFrom(...[100, 120, 140]), fc.array(fc.boolean(), { minLength: 140, maxLength: 140 }), fc.nat())
    .map(([length, encodeAt, breakAt]) => {
      const token = victim(length).token
      const encoded = [...token].map((c, i) => encodeAt[i] === true ? `%${c.charCodeAt(0).toString(16).toUpperCase()}` : c)
      if (breakAt % 3 === 0) encoded[breakAt % encoded.length] = '%'
      return session(encoded.join(''))
    })
  await property(t, 'percent-encoded garbage', partly, 300)
  const counts = tally('percent-encoded garbage')
  t.comment(`percent-encoded: ${counts.same} correctly encoded tokens opened, ${counts.fresh} fresh sessions`)
})

t.test('NUL bytes', async (t) => {
  const withNul = fc.oneof(
    fc.tuple(fc.constantFrom(...[100, 120, 140]), fc.array(fc.nat(), { minLength: 1, maxLength: 5 })).map(([length, places]) => {
      let token = victim(length).token
      for (const place of places) {
        const index = place % (token.length + 1)
        token = token.slice(0, index) + '\u0000' + token.slice(index)
      }
      return session(token)
    }),
    fc.integer({ min: 1, max: 200 }).map((count) => session('\u0000'.repeat(count))),
    fc.constantFrom(...[100, 120, 140]).map((length) => `session\u0000=${victim(length).token}`),
    fc.constantFrom(...[100, 120, 140]).map((length) => `\u0000session=${victim(length).token}`),
    fc.constantFrom(...[100, 120, 140]).map((length) => session(victim(length).token + '\u0000'))
  )
  await property(t, 'NUL bytes', withNul, 500)
})

t.test('authentic tokens whose plaintext is anything at all', async (t) => {
  // Made with the right key, so the MAC verifies: only the session layer stands between this
  // and the route. An object without a forbidden key is the session; anything else is fresh.
  function forbidden (value: unknown): boolean {
    if (typeof value !== 'object' || value === null) return false
    if (Array.isArray(value)) return value.some(forbidden)
    if (Object.hasOwn(value, '__proto__')) return true
    const ctor = (value as Data).constructor
    if (Object.hasOwn(value, 'constructor') && typeof ctor === 'object' && ctor !== null && Object.hasOwn(ctor, 'prototype')) return true
    return Object.values(value).some(forbidden)
  }
  function expectOf (plaintext: Uint8Array): Expect {
    let parsed: unknown
    try {
      parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plaintext))
    } catch {
      return { kind: 'fresh', sent: true }
    }
    const object = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
    return object && !forbidden(parsed) ? { kind: 'same', data: parsed as Data } : { kind: 'fresh', sent: true }
  }
  const encoder = new TextEncoder()
  const plaintexts = fc.oneof(
    { weight: 4, arbitrary: fc.jsonValue().map((value) => encoder.encode(JSON.stringify(value))) },
    { weight: 2, arbitrary: fc.dictionary(fc.constantFrom('__proto__', 'constructor', 'prototype', 'a', 'toString'), fc.jsonValue({ maxDepth: 2 })).map((value) => encoder.encode(JSON.stringify(value))) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map((text) => encoder.encode(text)) },
    { weight: 1, arbitrary: fc.constantFrom('{"__proto__":{"admin":true}}', '{"a":{"constructor":{"prototype":{"admin":true}}}}', '[]', 'null', '0', '"x"', 'true', '{}', '{"a":1}x', '\ufeff{"a":1}', ' {"a":1} ').map((text) => encoder.encode(text)) }
  )
  let n = 0
  await fc.assert(fc.asyncProperty(plaintexts, async (plaintext) => {
    const token = await tokenOf(plaintext, n++)
    const expect = expectOf(plaintext)
    const problem = await probe('authentic token, arbitrary plaintext', session(token), expect)
    if (problem !== undefined) throw new Error(`plaintext ${JSON.stringify(new TextDecoder().decode(plaintext).slice(0, 200))}: ${problem}`)
  }), { seed: SEED + seedOffset++, numRuns: runs(700) })
  const counts = tally('authentic token, arbitrary plaintext')
  t.ok(counts.same > 50 && counts.fresh > 50, `both outcomes were exercised (${counts.same} sessions, ${counts.fresh} refused)`)
})

t.test('a real listening server: what the HTTP parser refuses is a clear 4xx', async (t) => {
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const real = tally('real server')
  const send = async (headers: string[]): Promise<{ status: number, body: { isNew?: boolean, data?: unknown } }> => {
    real.cases++
    const response = await rawRequest(port, '/whoami', headers)
    let body: { isNew?: boolean, data?: unknown } = {}
    try { body = JSON.parse(response.body) } catch {}
    if (response.status >= 400 && response.status < 500) real.refused++
    else if (body.isNew === true) real.fresh++
    else if (body.isNew === false) real.same++
    return { status: response.status, body }
  }
  const big = bigToken()
  let answer = await send([`Cookie: ${session(big.token)}`])
  t.equal(answer.status, 200, 'a 3.9 KB session cookie: 200')
  t.same(answer.body, { isNew: false, data: big.data }, '... with its session')
  answer = await send([`Cookie: ${session('A'.repeat(16 * 1024))}`])
  t.equal(answer.status, 431, 'a 16 KB cookie: 431 Request Header Fields Too Large')
  answer = await send([`Cookie: ${session('A'.repeat(15_000))}`])
  t.equal(answer.status, 200, 'a 15 KB cookie, under the 16 KiB limit: 200')
  t.same(answer.body, { isNew: true, data: {} }, '... with a fresh session')
  answer = await send([`Cookie: ${session(victim(120).token.slice(0, 50) + '\u0000' + victim(120).token.slice(50))}`])
  t.equal(answer.status, 400, 'a NUL byte in the Cookie header: 400 from the HTTP parser')
  answer = await send([`Cookie: ${session(victim(120).token + '\u00ff\u0080')}`])
  t.equal(answer.status, 200, 'latin1 bytes 0x80-0xFF in the Cookie header reach the app: 200')
  t.same(answer.body, { isNew: true, data: {} }, '... with a fresh session')
  const many = Array.from({ length: 300 }, (_, i) => session(i === 0 ? 'bad' : victim(120).token)).join('; ')
  answer = await send([`Cookie: ${many}`])
  t.equal(answer.status, 431, `300 session cookies, ${many.length} bytes: 431`)
  const someMany = Array.from({ length: 100 }, (_, i) => session(i === 0 ? victim(100).token : 'x'.repeat(40))).join('; ')
  answer = await send([`Cookie: ${someMany}`])
  t.same([answer.status, answer.body], [200, { isNew: false, data: victim(100).data }], '100 session cookies, the first valid: 200 with the first one')
  answer = await send(['Cookie: session=bad', `Cookie: ${session(victim(120).token)}`])
  t.same([answer.status, answer.body], [200, { isNew: true, data: {} }], 'two Cookie header lines, a bad one first: joined, the first counts, fresh session')
  answer = await send([`Cookie: ${session(victim(120).token)}`, 'Cookie: session=bad'])
  t.same([answer.status, answer.body], [200, { isNew: false, data: victim(120).data }], 'two Cookie header lines, the valid one first: its session')
  // Random latin1 bytes on the wire, CR, LF and NUL included: the parser answers 400 or the
  // app answers 200 with a fresh session, never anything else.
  const seed = SEED + seedOffset++
  await fc.assert(fc.asyncProperty(latin1(300), async (value) => {
    const response = await send([`Cookie: session=${value}`])
    if (response.status === 200 && isDeepStrictEqual(response.body, { isNew: true, data: {} })) return
    if (response.status === 400) return
    throw new Error(`${describe(value)}: status ${response.status}, body ${JSON.stringify(response.body)}`)
  }), { seed, numRuns: runs(300) })
  t.pass(`${runs(300)} random latin1 Cookie values on the wire: each 200 with a fresh session or 400 (seed ${seed})`)
  t.same(logs.filter((line) => line.level >= 40), [], 'no log line at warn or error level')
})

t.test('figures', async (t) => {
  let total = 0
  for (const [category, counts] of tallies) {
    total += counts.cases
    t.comment(`${category}: ${counts.cases} cases (${counts.same} opened the session the cookie holds, ${counts.fresh} fresh session${counts.refused > 0 ? `, ${counts.refused} refused with a 4xx by the HTTP parser` : ''})`)
  }
  t.comment(`total: ${total} requests, seed ${SEED}`)
  t.ok(total > 36_000, 'tens of thousands of cases in all')
})
