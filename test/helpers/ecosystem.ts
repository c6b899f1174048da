// Shared by test/ecosystem.test.ts: the three session plugins behind one switch, a cookie jar
// for inject() and fetch(), a log that is kept, and a watch on the process for crashes.
import fastifyCookie from '@fastify/cookie'
import Fastify, { type FastifyInstance, type FastifyPluginCallback, type LightMyRequestResponse } from 'fastify'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { Writable } from 'node:stream'
import type { Test } from 'tap'
import encryptedSession, { Fernet } from '../../index.js'

// The peers are loaded untyped: their type declarations augment FastifyRequest.session with
// their own Session classes, which would clash with ours for every file that tsc checks.
const require = createRequire(import.meta.url)
const secureSession = require('@fastify/secure-session') as FastifyPluginCallback<Record<string, unknown>>
const fastifySession = require('@fastify/session') as FastifyPluginCallback<Record<string, unknown>>

export type SessionPluginName = 'ours' | '@fastify/secure-session' | '@fastify/session'
export const SESSION_PLUGINS: readonly SessionPluginName[] = ['ours', '@fastify/secure-session', '@fastify/session']

/** Registers one of the three session plugins on plain HTTP, as each one's README shows. */
export async function registerSession (app: FastifyInstance, plugin: SessionPluginName): Promise<void> {
  if (plugin === 'ours') {
    await app.register(encryptedSession, { key: Fernet.generateKey(), cookie: { secure: false } })
  } else if (plugin === '@fastify/secure-session') {
    await app.register(secureSession, { key: randomBytes(32), cookie: { path: '/', httpOnly: true } })
  } else {
    await app.register(fastifyCookie)
    await app.register(fastifySession, { secret: randomBytes(32).toString('hex'), cookie: { secure: false } })
  }
}

export interface LogLine { level: number, msg: string, err?: { type?: string, code?: string, message?: string }, [key: string]: unknown }

/** A Fastify app whose log (level info and up) is kept for assertions. */
export function loggedApp (): { app: FastifyInstance, logs: LogLine[] } {
  const logs: LogLine[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      logs.push(JSON.parse(chunk.toString()) as LogLine)
      callback()
    }
  })
  return { app: Fastify({ logger: { level: 'info', stream } }), logs }
}

/** Log lines at error level or above (pino: 50 error, 60 fatal). */
export function errorsIn (logs: readonly LogLine[]): LogLine[] {
  return logs.filter((line) => line.level >= 50)
}

interface JarEntry { value: string }

/**
 * A browser's cookie store, reduced to what these tests need: one path, one host. Values are
 * kept exactly as Set-Cookie wrote them (secure-session percent-encodes its cookie), and a
 * cookie that is cleared (empty value, Max-Age <= 0 or Expires in the past) is dropped.
 */
export class CookieJar {
  readonly #cookies = new Map<string, JarEntry>()

  /** Applies every Set-Cookie of an inject() response or a fetch() Response. */
  apply (response: { headers: Record<string, unknown> } | Response): this {
    const headers = response.headers
    const lines = headers instanceof Headers ? headers.getSetCookie() : [headers['set-cookie'] ?? []].flat() as string[]
    for (const line of lines) this.#applyLine(line)
    return this
  }

  #applyLine (line: string): void {
    const [pair = '', ...attributes] = line.split(';')
    const equals = pair.indexOf('=')
    const name = pair.slice(0, equals).trim()
    const value = pair.slice(equals + 1).trim()
    let cleared = value === ''
    for (const attribute of attributes) {
      const [key = '', ...rest] = attribute.split('=')
      const text = rest.join('=').trim()
      const lower = key.trim().toLowerCase()
      if (lower === 'max-age' && Number(text) <= 0) cleared = true
      if (lower === 'expires' && Date.parse(text) <= Date.now()) cleared = true
    }
    if (cleared) this.#cookies.delete(name)
    else this.#cookies.set(name, { value })
  }

  has (name: string): boolean {
    return this.#cookies.has(name)
  }

  get (name: string): string | undefined {
    return this.#cookies.get(name)?.value
  }

  get size (): number {
    return this.#cookies.size
  }

  /** The Cookie request header, or undefined when the jar is empty. */
  header (): string | undefined {
    if (this.#cookies.size === 0) return undefined
    return [...this.#cookies].map(([name, { value }]) => `${name}=${value}`).join('; ')
  }
}

/**
 * inject() with the jar's cookies sent and the response's Set-Cookie applied, as a browser
 * would: the tests then see what a user sees, whatever cookie names each plugin uses.
 */
export function browser (app: FastifyInstance, jar = new CookieJar()): {
  jar: CookieJar
  get: (url: string, headers?: Record<string, string>) => Promise<LightMyRequestResponse>
  post: (url: string, form?: Record<string, string>, headers?: Record<string, string>) => Promise<LightMyRequestResponse>
} {
  const send = async (options: { method: 'GET' | 'POST', url: string, payload?: string, headers: Record<string, string> }): Promise<LightMyRequestResponse> => {
    const cookie = jar.header()
    const response = await app.inject({ ...options, headers: { ...options.headers, ...(cookie === undefined ? {} : { cookie }) } })
    jar.apply(response)
    return response
  }
  return {
    jar,
    get: async (url, headers = {}) => await send({ method: 'GET', url, headers }),
    post: async (url, form = {}, headers = {}) => await send({
      method: 'POST',
      url,
      payload: new URLSearchParams(form).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }
    })
  }
}

export interface CrashRecord { event: 'unhandledRejection' | 'uncaughtException', error: unknown }

/**
 * Records what would have ended the process (an unhandled rejection, an uncaught exception)
 * while the test runs; the listeners are removed in teardown so nothing leaks into other tests.
 */
export function watchForCrashes (t: Test): CrashRecord[] {
  const records: CrashRecord[] = []
  const onRejection = (error: unknown): void => { records.push({ event: 'unhandledRejection', error }) }
  const onException = (error: unknown): void => { records.push({ event: 'uncaughtException', error }) }
  process.on('unhandledRejection', onRejection)
  process.on('uncaughtException', onException)
  t.teardown(() => {
    process.removeListener('unhandledRejection', onRejection)
    process.removeListener('uncaughtException', onException)
  })
  return records
}

/**
 * Arms a one-shot hold on WebCrypto's encrypt: the next call waits until a second call that
 * starts in the same turn of the event loop has settled, so two replies that race to seal the
 * session finish in the order opposite to the one they started in. Without a second call, the
 * first goes on at the next turn (setImmediate: an order of events, not a time), so a request
 * that seals only once is delayed, never stuck. Restored in teardown.
 */
export function holdFirstEncrypt (t: Test): { arm: () => void, secondStarted: () => boolean } {
  const subtle = globalThis.crypto.subtle as unknown as { encrypt: (...args: unknown[]) => Promise<unknown> }
  const original = subtle.encrypt
  let armed = false
  let second = false
  let pending: (() => void) | undefined
  const takePending = (): (() => void) | undefined => {
    const release = pending
    pending = undefined
    return release
  }
  subtle.encrypt = async function (this: unknown, ...args: unknown[]): Promise<unknown> {
    if (armed) {
      armed = false
      second = false
      const gate = new Promise<void>((resolve) => { pending = resolve })
      setImmediate(() => { takePending()?.() })
      await gate
      return await original.apply(this, args)
    }
    const release = takePending()
    if (release === undefined) return await original.apply(this, args)
    second = true
    try {
      return await original.apply(this, args)
    } finally {
      release()
    }
  }
  t.teardown(() => { subtle.encrypt = original })
  return { arm: () => { armed = true }, secondStarted: () => second }
}
