// Builds Fastify apps around the plugin for inject() tests, and reads what they set.
import Fastify, { type FastifyInstance } from 'fastify'
import { Writable } from 'node:stream'
import encryptedSession, { type EncryptedSessionOptions } from '../../index.js'

export interface LogLine { level: number, msg: string, reason?: string, [key: string]: unknown }

/** An app with the plugin and a log captured at debug level. */
export async function buildApp (options: EncryptedSessionOptions, routes?: (app: FastifyInstance) => void): Promise<{ app: FastifyInstance, logs: LogLine[], rawLogs: string[] }> {
  const logs: LogLine[] = []
  const rawLogs: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      rawLogs.push(chunk.toString())
      logs.push(JSON.parse(chunk.toString()) as LogLine)
      callback()
    }
  })
  const app = Fastify({ logger: { level: 'debug', stream } })
  await app.register(encryptedSession, options)
  routes?.(app)
  await app.ready()
  return { app, logs, rawLogs }
}

export interface SetCookie { name: string, value: string, maxAge?: number, expires?: Date, httpOnly?: boolean, secure?: boolean, sameSite?: string, path?: string, domain?: string }

/** The Set-Cookie for `name`, if the response set one. */
export function setCookie (response: { cookies: SetCookie[] }, name = 'session'): SetCookie | undefined {
  return response.cookies.find((cookie) => cookie.name === name)
}

/** Whether a Set-Cookie expires the cookie at once. */
export function isCleared (cookie: SetCookie | undefined): boolean {
  return cookie !== undefined && cookie.value === '' && (cookie.maxAge === 0 || (cookie.expires !== undefined && cookie.expires.getTime() <= 0))
}
