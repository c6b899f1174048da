// HKDF-SHA256 (RFC 5869) on WebCrypto: separate keys for separate purposes from one configured
// key, so that one secret can serve several registrations and cookie signing without a token
// made for one purpose ever being accepted for another. Python derives the same bytes with
// `HKDF(hashes.SHA256(), length, salt=None, info=label).derive(key)`.
import { bytesOf } from './bytes.js'

/** Prefix of every label this package derives with; the version lets a later format change them. */
export const LABEL_PREFIX = 'fastify-encrypted-session/1 '

/** `length` bytes derived from `key` for the purpose `label` (an empty salt, as Python's salt=None). */
export async function hkdf (key: Uint8Array, label: string, length = 32): Promise<Uint8Array> {
  const subtle = globalThis.crypto.subtle
  const base = await subtle.importKey('raw', key as Uint8Array<ArrayBuffer>, 'HKDF', false, ['deriveBits'])
  const bits = await subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: bytesOf(LABEL_PREFIX + label, 'label') }, base, length * 8)
  return new Uint8Array(bits)
}
