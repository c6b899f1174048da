// Text or bytes in, bytes out: how every API here takes data, passphrases and salts.

const textEncoder = new TextEncoder()

/**
 * UTF-8 bytes of a string, or the Uint8Array itself. Typed as ArrayBuffer-backed because
 * WebCrypto's typings accept nothing else; callers pass no SharedArrayBuffer views.
 */
export function bytesOf (value: unknown, what: string): Uint8Array<ArrayBuffer> {
  if (typeof value === 'string') return textEncoder.encode(value)
  if (value instanceof Uint8Array) return value as Uint8Array<ArrayBuffer>
  throw new TypeError(`${what} must be a string or a Uint8Array`)
}
