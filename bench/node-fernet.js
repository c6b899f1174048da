// A plain node:crypto Fernet (https://github.com/fernet/spec), written for the benchmark only:
// the "what the platform allows" reference. Same token format as lib/fernet/fernet.ts (url-safe base64
// with padding, version 0x80, 64-bit big-endian timestamp, 16-byte IV, AES-128-CBC with PKCS#7,
// HMAC-SHA256 over everything before it), synchronous, no WebCrypto, no thread pool.
//
// It checks what a real Fernet must: version, length, constant-time MAC before any plaintext
// is looked at, ttl and clock skew, padding; every failure throws the same error.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

const VERSION = 0x80
const HEADER = 1 + 8 + 16
const MAC = 32
const MIN_BYTES = HEADER + 16 + MAC
const MAX_CLOCK_SKEW = 60

export class NodeInvalidToken extends Error {
  constructor () {
    super('Invalid Fernet token')
    this.name = 'InvalidToken'
  }
}

function keyBytes (key) {
  const raw = Buffer.isBuffer(key) || key instanceof Uint8Array ? Buffer.from(key) : Buffer.from(key, 'base64url')
  if (raw.length !== 32) throw new TypeError('A Fernet key is 32 bytes')
  return raw
}

function encodeToken (bytes) {
  const text = bytes.toString('base64url')
  const pad = (4 - (text.length % 4)) % 4
  return pad === 0 ? text : text + '='.repeat(pad)
}

export class NodeFernet {
  #signingKey
  #encryptionKey

  constructor (key) {
    const raw = keyBytes(key)
    this.#signingKey = raw.subarray(0, 16)
    this.#encryptionKey = raw.subarray(16)
  }

  static generateKey () {
    return encodeToken(randomBytes(32))
  }

  /** data: string or bytes; returns the token text. */
  encrypt (data, unixSeconds = Math.floor(Date.now() / 1000)) {
    const plaintext = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
    const iv = randomBytes(16)
    const cipher = createCipheriv('aes-128-cbc', this.#encryptionKey, iv)
    const first = cipher.update(plaintext)
    const last = cipher.final()
    const token = Buffer.allocUnsafe(HEADER + first.length + last.length + MAC)
    token[0] = VERSION
    token.writeUInt32BE(Math.floor(unixSeconds / 2 ** 32), 1)
    token.writeUInt32BE(unixSeconds % 2 ** 32, 5)
    iv.copy(token, 9)
    first.copy(token, HEADER)
    last.copy(token, HEADER + first.length)
    const macOffset = token.length - MAC
    createHmac('sha256', this.#signingKey).update(token.subarray(0, macOffset)).digest().copy(token, macOffset)
    return encodeToken(token)
  }

  /** The plaintext bytes (a Buffer); throws NodeInvalidToken for any failure. */
  decrypt (token, { ttl, now = Math.floor(Date.now() / 1000) } = {}) {
    if (typeof token !== 'string' || token.length > 65536) throw new NodeInvalidToken()
    const bytes = Buffer.from(token, 'base64url')
    if (bytes.length < MIN_BYTES || (bytes.length - HEADER - MAC) % 16 !== 0 || bytes[0] !== VERSION) {
      throw new NodeInvalidToken()
    }
    const macOffset = bytes.length - MAC
    const expected = createHmac('sha256', this.#signingKey).update(bytes.subarray(0, macOffset)).digest()
    if (!timingSafeEqual(expected, bytes.subarray(macOffset))) throw new NodeInvalidToken()
    const timestamp = bytes.readUInt32BE(1) * 2 ** 32 + bytes.readUInt32BE(5)
    if (ttl !== undefined) {
      if (timestamp + ttl < now) throw new NodeInvalidToken()
      if (now + MAX_CLOCK_SKEW < timestamp) throw new NodeInvalidToken()
    }
    try {
      const decipher = createDecipheriv('aes-128-cbc', this.#encryptionKey, bytes.subarray(9, HEADER))
      const first = decipher.update(bytes.subarray(HEADER, macOffset))
      const last = decipher.final()
      return last.length === 0 ? first : Buffer.concat([first, last])
    } catch {
      throw new NodeInvalidToken()
    }
  }
}
