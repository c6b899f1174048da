// PBKDF2-HMAC-SHA256 from a passphrase to a Fernet key, on WebCrypto, for deployments that
// configure a passphrase rather than a generated key. Deliberately slow: run it once at start-up.
import { base64 } from './base64.js'
import { bytesOf } from './bytes.js'

export interface DeriveKeyOptions {
  /** PBKDF2 rounds; default 600,000, OWASP's advice for PBKDF2-HMAC-SHA256 (2023 onwards). */
  iterations?: number
}

export const DEFAULT_ITERATIONS = 600_000
/**
 * The shortest passphrase taken: 32 bytes, @fastify/secure-session's floor and the plugin's
 * `secret` option's; PBKDF2 slows guessing, it cannot make a short passphrase long.
 */
export const MIN_PASSPHRASE_BYTES = 32
/** NIST SP 800-132 asks for at least 128 bits of salt. */
export const MIN_SALT_BYTES = 16

/**
 * Derives a Fernet key (url-safe base64, as Fernet.generateKey() gives) that Python's
 * `PBKDF2HMAC(hashes.SHA256(), 32, salt, iterations)` derives from the same inputs.
 */
export async function deriveKey (passphrase: string | Uint8Array, salt: string | Uint8Array, options: DeriveKeyOptions = {}): Promise<string> {
  const secret = bytesOf(passphrase, 'passphrase')
  const saltBytes = bytesOf(salt, 'salt')
  const { iterations = DEFAULT_ITERATIONS } = options
  if (secret.length < MIN_PASSPHRASE_BYTES) {
    throw new TypeError(`passphrase must be at least ${MIN_PASSPHRASE_BYTES} bytes (it is ${secret.length}); a generated key (\`npx fastify-encrypted-session keygen\`) is better still`)
  }
  if (saltBytes.length < MIN_SALT_BYTES) throw new TypeError(`salt must be at least ${MIN_SALT_BYTES} bytes`)
  if (!Number.isSafeInteger(iterations) || iterations < 1) throw new TypeError('iterations must be a whole number, 1 or more')
  const subtle = globalThis.crypto.subtle
  const baseKey = await subtle.importKey('raw', secret, 'PBKDF2', false, ['deriveBits'])
  const bits = await subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: saltBytes, iterations }, baseKey, 256)
  return base64.encode(new Uint8Array(bits))
}
