// Minimal stores with express-session's interface, as third-party stores implement it: one with
// callbacks (like connect-pg-simple), one with promises and no touch(). Records are kept as
// JSON text, as a real store serialises them, so nothing is shared by reference.
type Callback<T> = (error?: unknown, value?: T) => void

export class CallbackStore {
  readonly records = new Map<string, { json: string, expires: number }>()
  calls = 0

  get (sid: string, callback: Callback<unknown>): void {
    this.calls++
    const record = this.records.get(sid)
    setImmediate(() => { callback(null, record === undefined || record.expires < Date.now() ? null : JSON.parse(record.json)) })
  }

  set (sid: string, session: { cookie: { expires: string } }, callback: Callback<void>): void {
    this.calls++
    this.records.set(sid, { json: JSON.stringify(session), expires: Date.parse(session.cookie.expires) })
    setImmediate(() => { callback() })
  }

  touch (sid: string, session: { cookie: { expires: string } }, callback: Callback<void>): void {
    this.calls++
    const record = this.records.get(sid)
    if (record !== undefined) record.expires = Date.parse(session.cookie.expires)
    setImmediate(() => { callback() })
  }

  destroy (sid: string, callback: Callback<void>): void {
    this.calls++
    this.records.delete(sid)
    setImmediate(() => { callback() })
  }
}

export class PromiseStore {
  readonly records = new Map<string, string>()

  async get (sid: string): Promise<unknown> {
    const json = this.records.get(sid)
    return json === undefined ? undefined : JSON.parse(json)
  }

  async set (sid: string, session: unknown): Promise<void> {
    this.records.set(sid, JSON.stringify(session))
  }

  async destroy (sid: string): Promise<void> {
    this.records.delete(sid)
  }
}
