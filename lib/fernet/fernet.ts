// lib/fernet/: the token format (Fernet, its keys, HKDF and PBKDF2) on WebCrypto alone. It may
// import only its own files: no `node:` module, nothing of Fastify, nothing else of lib/, so the
// `fastify-encrypted-session/fernet` entry runs in browsers and workers (test/layout.test.ts).
// Fernet (https://github.com/fernet/spec) on WebCrypto alone, with the semantics of Python's
// cryptography.fernet. No Node-only API is used here, so this module runs unchanged in
// browsers, Deno, Bun and workers.
import { base64, decodedLength } from './base64.js'
import { bytesOf } from './bytes.js'

export { deriveKey } from './derive-key.js'
export type { DeriveKeyOptions } from './derive-key.js'

const VERSION = 0x80
const IV_BYTES = 16
const BLOCK_BYTES = 16
const MAC_BYTES = 32
const HEADER_BYTES = 1 + 8 + IV_BYTES
const MIN_TOKEN_BYTES = HEADER_BYTES + BLOCK_BYTES + MAC_BYTES

/** Seconds a token's timestamp may lie ahead of the clock, when a ttl is checked (as in pyca). */
export const MAX_CLOCK_SKEW = 60

/**
 * Longest token text read by default, checked before anything is decoded. 64 KiB is four times
 * Node's default 16 KiB limit on all request headers together, so every token that can arrive in
 * a cookie or a header fits, while a hostile caller cannot make us decode and hash megabytes.
 * Raise it with the `maxTokenLength` option to seal larger messages.
 */
export const DEFAULT_MAX_TOKEN_LENGTH = 65536

/** Why a token was refused; given to `onInvalid` callbacks, never put into the error. */
export type InvalidTokenReason =
  | 'malformed' // not a string, bad base64, wrong length or version byte
  | 'too-large' // over maxTokenLength, refused before decoding
  | 'signature' // HMAC mismatch: tampered, or made with another key
  | 'expired' // authentic, older than the ttl
  | 'future' // authentic, timestamp more than MAX_CLOCK_SKEW seconds ahead
  | 'padding' // authentic, but its plaintext padding is broken

const BRAND = Symbol.for('fastify-encrypted-session.InvalidToken')

/**
 * The one error for every token that cannot be used, whatever the reason, so that callers
 * (and attackers) learn nothing about which check failed.
 */
export class InvalidToken extends Error {
  constructor () {
    super('Invalid Fernet token')
    this.name = 'InvalidToken'
  }

  get [BRAND] (): true { return true }

  // The ESM and CommonJS builds each define this class; a brand keeps `instanceof`
  // true for an InvalidToken thrown by either copy.
  static override [Symbol.hasInstance] (value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true
  }
}

export interface FernetOptions {
  /** Longest token text accepted, and produced; default DEFAULT_MAX_TOKEN_LENGTH. */
  maxTokenLength?: number
}

export interface DecryptOptions {
  /** Refuse tokens older than this many seconds (and too far in the future). */
  ttl?: number
  /** Unix seconds to judge the ttl against; default now. */
  now?: number
  /** Told why a token was refused, for debug logging; the thrown error never says. */
  onInvalid?: (reason: InvalidTokenReason) => void
}

export interface DecryptedToken {
  plaintext: Uint8Array
  /** Unix seconds at which the token was made. */
  timestamp: number
  /** Which key of a MultiFernet opened it (0 for a single Fernet). */
  keyIndex: number
}

/** A Fernet key: base64 text (url-safe or standard) or the raw 32 bytes. */
export type FernetKey = string | Uint8Array
// WebCrypto's typings take only ArrayBuffer-backed views; ours always are.
type Bytes = Uint8Array<ArrayBuffer>

function subtle (): SubtleCrypto {
  return globalThis.crypto.subtle
}

/**
 * Unix seconds now. A clock set before 1970 reads as 1970, where a token's unsigned timestamp
 * begins: a broken clock must not make every encryption throw.
 */
export function nowSeconds (): number {
  return Math.max(0, Math.floor(Date.now() / 1000))
}

/**
 * Why a token made at `timestamp` is too old or too new for `ttl` at `now`, or undefined:
 * expired when timestamp + ttl < now (an age equal to the ttl passes), too new when more than
 * MAX_CLOCK_SKEW seconds ahead. The one statement of pyca's rules, for Fernet and for callers
 * that remember verified tokens.
 */
export function ageProblem (timestamp: number, ttl: number, now: number): 'expired' | 'future' | undefined {
  if (timestamp + ttl < now) return 'expired'
  if (now + MAX_CLOCK_SKEW < timestamp) return 'future'
  return undefined
}

function checkUnixSeconds (value: unknown, what: string): asserts value is number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw new TypeError(`${what} must be a whole number of seconds, 0 or more`)
  }
}

function checkTtl (ttl: unknown): void {
  if (ttl !== undefined && (typeof ttl !== 'number' || !(ttl >= 0) || ttl === Infinity)) {
    throw new TypeError('ttl must be a finite number of seconds, 0 or more')
  }
}

/** The 32 bytes of a Fernet key given as text (either base64 alphabet) or bytes; a copy. */
export function keyBytes (key: unknown): Uint8Array {
  if (key instanceof Uint8Array) {
    if (key.length !== 32) throw new TypeError(`A Fernet key given as bytes must be 32 bytes long, not ${key.length}`)
    // A copy, so that later writes to the caller's array cannot change the key; not slice(),
    // which for a Node Buffer shares memory.
    return new Uint8Array(key)
  }
  if (typeof key !== 'string') {
    throw new TypeError('A Fernet key must be a base64 string (as Fernet.generateKey() makes) or 32 bytes')
  }
  // Both alphabets, as pyca accepts: some Python projects build keys with standard base64.
  if (decodedLength(key, true) !== 32) {
    throw new TypeError(`A Fernet key must be 32 bytes in url-safe base64 (44 characters, as Fernet.generateKey() makes); the key given (${key.length} characters) is not`)
  }
  // Copied out and the decoded bytes zeroed: Node's Buffer decodes small inputs into a shared
  // pool that later, unrelated Buffers can read.
  const decoded = base64.decode(key)
  const raw = new Uint8Array(decoded)
  decoded.fill(0)
  return raw
}

/** Length of the token text (padded) that sealing `plaintextBytes` bytes produces. */
export function tokenTextLength (plaintextBytes: number): number {
  const ciphertextBytes = (Math.floor(plaintextBytes / BLOCK_BYTES) + 1) * BLOCK_BYTES
  return Math.ceil((HEADER_BYTES + ciphertextBytes + MAC_BYTES) / 3) * 4
}

function readTimestamp (token: Uint8Array): number {
  const view = new DataView(token.buffer, token.byteOffset, token.byteLength)
  return view.getUint32(1) * 2 ** 32 + view.getUint32(5)
}

/** Token bytes, or why the text is no token; nothing but its shape is looked at. */
function decodeToken (token: unknown, maxTokenLength: number): Uint8Array | InvalidTokenReason {
  if (typeof token !== 'string') return 'malformed'
  if (token.length > maxTokenLength) return 'too-large'
  const length = decodedLength(token, false)
  if (length < MIN_TOKEN_BYTES || (length - HEADER_BYTES - MAC_BYTES) % BLOCK_BYTES !== 0) return 'malformed'
  const bytes = base64.decode(token)
  return bytes[0] === VERSION ? bytes : 'malformed'
}

function fail (reason: InvalidTokenReason, onInvalid: DecryptOptions['onInvalid']): never {
  onInvalid?.(reason)
  throw new InvalidToken()
}

// Registered symbols, so that a Fernet from the CommonJS build works inside a MultiFernet
// of the ESM build (and the other way round).
/** @internal */
export const openToken = Symbol.for('fastify-encrypted-session.openToken')
/** @internal */
export const verifyToken = Symbol.for('fastify-encrypted-session.verifyToken')
/** @internal */
export const encryptFromParts = Symbol.for('fastify-encrypted-session.encryptFromParts')
const FERNET_BRAND = Symbol.for('fastify-encrypted-session.Fernet')

/** What Fernet and MultiFernet share: everything but how they encrypt and which keys they try. */
export abstract class FernetBase {
  abstract readonly maxTokenLength: number
  /** @internal The keys tried, in order, to open a token. */
  protected abstract keyring (): readonly Fernet[]
  abstract encryptAtTime (data: string | Uint8Array, unixSeconds: number): Promise<string>

  encrypt (data: string | Uint8Array): Promise<string> {
    return this.encryptAtTime(data, nowSeconds())
  }

  async decrypt (token: string, options: Omit<DecryptOptions, 'now'> = {}): Promise<Uint8Array> {
    return (await this.decryptDetailed(token, options)).plaintext
  }

  async decryptAtTime (token: string, ttl: number, unixSeconds: number): Promise<Uint8Array> {
    checkUnixSeconds(unixSeconds, 'unixSeconds')
    if (ttl === undefined) throw new TypeError('decryptAtTime needs a ttl; use decrypt() for none')
    return (await this.decryptDetailed(token, { ttl, now: unixSeconds })).plaintext
  }

  /** Plaintext with the token's timestamp and the key that opened it; decrypt() is built on it. */
  async decryptDetailed (token: string, options: DecryptOptions = {}): Promise<DecryptedToken> {
    const { ttl, now, onInvalid } = options
    checkTtl(ttl)
    if (now !== undefined) checkUnixSeconds(now, 'now')
    const bytes = decodeToken(token, this.maxTokenLength)
    if (typeof bytes === 'string') fail(bytes, onInvalid)
    const at = now ?? nowSeconds()
    const fernets = this.keyring()
    let reason: InvalidTokenReason = 'signature'
    for (let keyIndex = 0; keyIndex < fernets.length; keyIndex++) {
      const opened = await (fernets[keyIndex] as Fernet)[openToken](bytes, ttl, at)
      if (typeof opened !== 'string') return { ...opened, keyIndex }
      reason = opened
      // Only a MAC mismatch means "maybe another key"; any later check failed on an authentic token.
      if (reason !== 'signature') break
    }
    return fail(reason, onInvalid)
  }

  /** The token's creation time in Unix seconds, read only after its MAC verified. */
  async extractTimestamp (token: string): Promise<number> {
    const bytes = decodeToken(token, this.maxTokenLength)
    if (typeof bytes === 'string') throw new InvalidToken()
    for (const fernet of this.keyring()) {
      if (await fernet[verifyToken](bytes)) return readTimestamp(bytes)
    }
    throw new InvalidToken()
  }
}

export class Fernet extends FernetBase {
  readonly maxTokenLength: number
  readonly #keyring: readonly Fernet[] = [this]
  readonly #signingKey: Uint8Array
  readonly #encryptionKey: Uint8Array
  #cryptoKeys: Promise<[CryptoKey, CryptoKey]> | undefined

  get [FERNET_BRAND] (): true { return true }

  static override [Symbol.hasInstance] (value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[FERNET_BRAND] === true
  }

  /** 32 random bytes as url-safe base64 with padding, the form Python's Fernet.generate_key() gives. */
  static generateKey (): string {
    return base64.encode(globalThis.crypto.getRandomValues(new Uint8Array(32)))
  }

  /**
   * @param key 32 bytes: url-safe or standard base64 text (as Python takes it), or the raw bytes.
   * The first 16 bytes sign, the last 16 encrypt.
   */
  constructor (key: FernetKey, options: FernetOptions = {}) {
    super()
    const raw = keyBytes(key)
    this.#signingKey = raw.subarray(0, 16)
    this.#encryptionKey = raw.subarray(16)
    const { maxTokenLength = DEFAULT_MAX_TOKEN_LENGTH } = options
    if (!Number.isSafeInteger(maxTokenLength) || maxTokenLength < tokenTextLength(0)) {
      throw new TypeError(`maxTokenLength must be a whole number of at least ${tokenTextLength(0)} characters`)
    }
    this.maxTokenLength = maxTokenLength
  }

  // Imported once, on first use: importing on every call costs more than the cipher work.
  #keys (): Promise<[CryptoKey, CryptoKey]> {
    this.#cryptoKeys ??= Promise.all([
      subtle().importKey('raw', this.#signingKey as Bytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']),
      subtle().importKey('raw', this.#encryptionKey as Bytes, { name: 'AES-CBC' }, false, ['encrypt', 'decrypt'])
    ])
    return this.#cryptoKeys
  }

  /** @internal */
  protected keyring (): readonly Fernet[] {
    return this.#keyring
  }

  async encryptAtTime (data: string | Uint8Array, unixSeconds: number): Promise<string> {
    checkUnixSeconds(unixSeconds, 'unixSeconds')
    const plaintext = bytesOf(data, 'data')
    return await this[encryptFromParts](plaintext, unixSeconds, globalThis.crypto.getRandomValues(new Uint8Array(IV_BYTES)))
  }

  /** @internal A caller-chosen IV is only for the spec's fixed vectors and for rotate(). */
  async [encryptFromParts] (plaintext: Uint8Array, unixSeconds: number | Uint8Array, iv: Uint8Array): Promise<string> {
    if (tokenTextLength(plaintext.length) > this.maxTokenLength) {
      throw new RangeError(`data of ${plaintext.length} bytes makes a token longer than maxTokenLength (${this.maxTokenLength})`)
    }
    const [hmacKey, aesKey] = await this.#keys()
    const ciphertext = new Uint8Array(await subtle().encrypt({ name: 'AES-CBC', iv: iv as Bytes }, aesKey, plaintext as Bytes))
    const token = new Uint8Array(HEADER_BYTES + ciphertext.length + MAC_BYTES)
    const view = new DataView(token.buffer)
    token[0] = VERSION
    if (unixSeconds instanceof Uint8Array) {
      // rotate() copies the 8 timestamp bytes as they were, exact even past 2^53.
      token.set(unixSeconds, 1)
    } else {
      view.setUint32(1, Math.floor(unixSeconds / 2 ** 32))
      view.setUint32(5, unixSeconds % 2 ** 32)
    }
    token.set(iv, 9)
    token.set(ciphertext, HEADER_BYTES)
    const macOffset = token.length - MAC_BYTES
    const mac = await subtle().sign('HMAC', hmacKey, token.subarray(0, macOffset))
    token.set(new Uint8Array(mac), macOffset)
    return base64.encode(token)
  }

  /** @internal Constant-time HMAC check (WebCrypto's verify) of decoded token bytes. */
  async [verifyToken] (token: Uint8Array): Promise<boolean> {
    const [hmacKey] = await this.#keys()
    const macOffset = token.length - MAC_BYTES
    return await subtle().verify('HMAC', hmacKey, token.subarray(macOffset) as Bytes, token.subarray(0, macOffset) as Bytes)
  }

  /**
   * @internal The classic Fernet order, strictly one step after the other: the MAC is verified
   * first, then the timestamp checked, and only then does AES-CBC decryption start. Starting the
   * decryption alongside the MAC check, even with its result ignored, lets a forged token learn
   * whether its padding was valid from how long the refusal takes: a padding oracle.
   */
  async [openToken] (token: Uint8Array, ttl: number | undefined, now: number): Promise<{ plaintext: Uint8Array, timestamp: number } | InvalidTokenReason> {
    if (!await this[verifyToken](token)) return 'signature'
    const timestamp = readTimestamp(token)
    const problem = ttl === undefined ? undefined : ageProblem(timestamp, ttl, now)
    if (problem !== undefined) return problem
    const [, aesKey] = await this.#keys()
    try {
      const plaintext = await subtle().decrypt(
        { name: 'AES-CBC', iv: token.subarray(9, HEADER_BYTES) as Bytes },
        aesKey,
        token.subarray(HEADER_BYTES, token.length - MAC_BYTES) as Bytes
      )
      return { plaintext: new Uint8Array(plaintext), timestamp }
    } catch {
      return 'padding'
    }
  }
}

/**
 * Several keys: encrypts with the first, decrypts with any, in order. Put a new key first and
 * keep the old ones behind it for as long as their tokens may still be in use.
 */
export class MultiFernet extends FernetBase {
  readonly fernets: readonly Fernet[]
  readonly maxTokenLength: number

  constructor (keys: ReadonlyArray<Fernet | FernetKey>, options: FernetOptions = {}) {
    super()
    if (!Array.isArray(keys) || keys.length === 0) {
      throw new TypeError('MultiFernet needs a non-empty array of Fernet instances or keys')
    }
    this.fernets = Object.freeze(keys.map((key) => key instanceof Fernet ? key : new Fernet(key, options)))
    this.maxTokenLength = Math.max(...this.fernets.map((fernet) => fernet.maxTokenLength))
  }

  /** @internal */
  protected keyring (): readonly Fernet[] {
    return this.fernets
  }

  encryptAtTime (data: string | Uint8Array, unixSeconds: number): Promise<string> {
    return (this.fernets[0] as Fernet).encryptAtTime(data, unixSeconds)
  }

  /** Re-encrypts a token under the first key, keeping its timestamp (no ttl is checked, as in pyca). */
  async rotate (token: string): Promise<string> {
    const { plaintext } = await this.decryptDetailed(token)
    // It decoded a moment ago, so it decodes again.
    const timestamp = (decodeToken(token, this.maxTokenLength) as Uint8Array).subarray(1, 9)
    return await (this.fernets[0] as Fernet)[encryptFromParts](plaintext, timestamp, globalThis.crypto.getRandomValues(new Uint8Array(IV_BYTES)))
  }
}
