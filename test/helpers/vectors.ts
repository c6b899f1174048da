// The official Fernet vectors (test/fixtures/fernet-spec, see its README for their origin).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export interface SpecCase {
  desc?: string
  token: string
  now: string
  secret: string
  src?: string
  iv?: number[]
  ttl_sec?: number
}

function load (name: string): SpecCase[] {
  return JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'fernet-spec', name), 'utf8')) as SpecCase[]
}

export const generateCases = load('generate.json')
export const verifyCases = load('verify.json')
export const invalidCases = load('invalid.json')

/** RFC 3339 time of the vectors to Unix seconds. */
export function unixSeconds (rfc3339: string): number {
  return Date.parse(rfc3339) / 1000
}
