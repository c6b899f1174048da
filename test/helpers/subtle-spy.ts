// Records the order in which WebCrypto's verify and decrypt start and settle, by wrapping the
// methods of the one SubtleCrypto object every caller shares. Proves an order of operations
// structurally; nothing here measures time.
import type { Test } from 'tap'

export type SubtleEvent = 'verify:start' | 'verify:end' | 'decrypt:start' | 'decrypt:end' | 'sign:start' | 'encrypt:start'

export function spyOnSubtle (t: Test): SubtleEvent[] {
  const subtle = globalThis.crypto.subtle as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
  const events: SubtleEvent[] = []
  const originals = new Map<string, (...args: unknown[]) => Promise<unknown>>()
  for (const name of ['verify', 'decrypt', 'sign', 'encrypt']) {
    const original = subtle[name] as (...args: unknown[]) => Promise<unknown>
    originals.set(name, original)
    subtle[name] = async function (this: unknown, ...args: unknown[]) {
      events.push(`${name}:start` as SubtleEvent)
      try {
        return await original.apply(this, args)
      } finally {
        if (name === 'verify' || name === 'decrypt') events.push(`${name}:end` as SubtleEvent)
      }
    }
  }
  t.teardown(() => {
    for (const [name, original] of originals) subtle[name] = original
  })
  return events
}
