// Url-safe base64 (RFC 4648 §5) for Fernet keys and tokens, on whatever the runtime offers.
// Node's Buffer is several times faster than atob/btoa on 3 KB tokens, so it is used when
// present; the atob/btoa path keeps this module working in browsers, Deno, Bun and workers.

export interface Base64Codec {
  encode (bytes: Uint8Array): string
  /** Decodes text already checked by `isBase64Shape`; standard and url-safe letters alike. */
  decode (text: string): Uint8Array
}

interface BufferLike {
  from (data: ArrayBufferLike, byteOffset: number, length: number): { toString (encoding: string): string }
  from (data: string, encoding: string): Uint8Array
}

const PADDING = ['', '===', '==', '=']

function bufferCodec (NodeBuffer: BufferLike): Base64Codec {
  return {
    encode (bytes) {
      const text = NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')
      return text + PADDING[text.length % 4]
    },
    decode (text) {
      // Buffer reads '+/' and '-_' alike in either mode. A plain Uint8Array view is returned
      // because Buffer's slice() shares memory where Uint8Array's copies.
      const buffer = NodeBuffer.from(text, 'base64url')
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
    }
  }
}

// btoa over a string built in slices: String.fromCharCode(...bytes) on one huge array
// would exceed the engine's argument limit.
const SLICE = 0x8000

function webCodec (): Base64Codec {
  return {
    encode (bytes) {
      let binary = ''
      for (let i = 0; i < bytes.length; i += SLICE) {
        binary += String.fromCharCode(...bytes.subarray(i, i + SLICE))
      }
      return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_')
    },
    decode (text) {
      const unpadded = text.replace(/=+$/, '')
      const binary = atob(unpadded.replace(/-/g, '+').replace(/_/g, '/') + PADDING[unpadded.length % 4])
      const bytes = new Uint8Array(binary.length)
      for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
      return bytes
    }
  }
}

/** @internal Picks the fastest codec the given global scope supports; exported for tests. */
export function selectCodec (scope: { Buffer?: unknown }): Base64Codec {
  return typeof scope.Buffer === 'function' ? bufferCodec(scope.Buffer as unknown as BufferLike) : webCodec()
}

export const base64 = selectCodec(globalThis as { Buffer?: unknown })

/**
 * Number of bytes that `text` decodes to when it is url-safe (or, with `standard`, also
 * standard) base64 with correct or absent `=` padding and nothing else; -1 otherwise.
 * Checked before decoding because both decoders silently skip characters they do not know.
 */
export function decodedLength (text: string, allowStandardAlphabet: boolean): number {
  const shape = allowStandardAlphabet ? /^[A-Za-z0-9_\-+/]*(={0,2})$/ : /^[A-Za-z0-9_-]*(={0,2})$/
  const match = shape.exec(text)
  if (match === null) return -1
  const padding = (match[1] as string).length
  const letters = text.length - padding
  const rest = letters % 4
  if (rest === 1) return -1
  if (padding !== 0 && (rest === 0 || rest + padding !== 4)) return -1
  return Math.floor(letters * 3 / 4)
}
