// A bounded least-recently-used map. The session codec keeps in it the plaintext of tokens
// whose MAC verified, so a returning cookie costs a Map lookup instead of two WebCrypto calls
// (each an async trip through the libuv thread pool).

export class TokenCache<Value> {
  readonly maxEntries: number
  readonly #entries = new Map<string, Value>()

  constructor (maxEntries: number) {
    this.maxEntries = maxEntries
  }

  get size (): number {
    return this.#entries.size
  }

  get (key: string): Value | undefined {
    const value = this.#entries.get(key)
    if (value !== undefined) {
      // Map keeps insertion order: moving a hit to the end makes the first key the least recent.
      this.#entries.delete(key)
      this.#entries.set(key, value)
    }
    return value
  }

  set (key: string, value: Value): void {
    this.#entries.delete(key)
    this.#entries.set(key, value)
    if (this.#entries.size > this.maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value as string)
    }
  }

  delete (key: string): void {
    this.#entries.delete(key)
  }
}
