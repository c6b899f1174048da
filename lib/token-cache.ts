// A bounded least-recently-used map. The session codec keeps in it the plaintext of tokens
// whose MAC verified, so a returning cookie costs a Map lookup instead of two WebCrypto calls
// (each an async trip through the libuv thread pool).

export class TokenCache<Value> {
  readonly maxEntries: number
  /** Bound on the summed weights (the codec weighs entries in bytes). */
  readonly maxWeight: number
  readonly #entries = new Map<string, { value: Value, weight: number }>()
  #weight = 0

  constructor (maxEntries: number, maxWeight: number) {
    this.maxEntries = maxEntries
    this.maxWeight = maxWeight
  }

  get size (): number {
    return this.#entries.size
  }

  get weight (): number {
    return this.#weight
  }

  get (key: string): Value | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    // Map keeps insertion order: moving a hit to the end makes the first key the least recent.
    this.#entries.delete(key)
    this.#entries.set(key, entry)
    return entry.value
  }

  set (key: string, value: Value, weight: number): void {
    this.delete(key)
    if (weight > this.maxWeight) return
    this.#entries.set(key, { value, weight })
    this.#weight += weight
    while (this.#entries.size > this.maxEntries || this.#weight > this.maxWeight) {
      this.delete(this.#entries.keys().next().value as string)
    }
  }

  delete (key: string): void {
    const entry = this.#entries.get(key)
    if (entry === undefined) return
    this.#entries.delete(key)
    this.#weight -= entry.weight
  }
}
