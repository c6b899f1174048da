// Byte-for-byte interop with Python's cryptography.fernet, the reference implementation.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Fernet, InvalidToken, MultiFernet, deriveKey } from '../lib/fernet/fernet.js'
import { pythonMissing, runFernetTool } from './helpers/python.js'

const skip = pythonMissing()
const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64')
const fromB64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'))
const NOW = 1_700_000_000

interface Answer { token?: string, data?: string, error?: string, timestamp?: number, key?: string }

function payloads (): Array<[string, Uint8Array]> {
  const list: Array<[string, Uint8Array]> = [
    ['empty', new Uint8Array(0)],
    ['unicode', new TextEncoder().encode('héllo wörld 😀 日本語 \u0000 end')],
    ['binary, every byte value', Uint8Array.from({ length: 256 }, (_, i) => i)],
    ['3 KB', new Uint8Array(randomBytes(3072))],
    ['JSON session', new TextEncoder().encode(JSON.stringify({ user: 'ada', visits: 3, _flashes: [['info', 'hi']] }))]
  ]
  for (let i = 0; i < 40; i++) {
    const size = i < 16 ? i : Math.floor(Math.random() * 3000)
    list.push([`random ${size} bytes`, new Uint8Array(randomBytes(size))])
  }
  return list
}

t.test('Fernet tokens cross between Python and Node', { skip }, async (t) => {
  const key = Fernet.generateKey()
  const fernet = new Fernet(key)
  const cases = payloads()

  const fromPython = runFernetTool<Answer>(cases.map(([, data]) => ({ op: 'encrypt', keys: [key], data: b64(data) })))
  for (const [i, [name, data]] of cases.entries()) {
    t.same(await fernet.decrypt(fromPython[i]?.token as string), data, `Python -> Node: ${name}`)
  }

  const tokens = await Promise.all(cases.map(async ([, data]) => await fernet.encryptAtTime(data, NOW)))
  const decrypted = runFernetTool<Answer>(tokens.flatMap((token) => [
    { op: 'decrypt', keys: [key], token },
    { op: 'timestamp', keys: [key], token }
  ]))
  for (const [i, [name, data]] of cases.entries()) {
    t.same(fromB64(decrypted[2 * i]?.data as string), data, `Node -> Python: ${name}`)
    t.equal(decrypted[2 * i + 1]?.timestamp, NOW, `Python reads the timestamp: ${name}`)
  }
  t.comment(`interop payload cases: ${cases.length} each way`)
})

t.test('the same token for the same key, time and IV', { skip }, async (t) => {
  // Python's encrypt_at_time draws its own IV, so compare through decryption of each other's
  // fixed-time tokens and through the spec vector (test/fernet.test.ts) for exact bytes.
  const key = Fernet.generateKey()
  const [answer] = runFernetTool<Answer>([{ op: 'encrypt', keys: [key], data: b64(new TextEncoder().encode('at a time')), at: NOW }])
  t.equal(await new Fernet(key).extractTimestamp(answer?.token as string), NOW, 'Python encrypt_at_time timestamp read by Node')
})

t.test('keys made on either side', { skip }, async (t) => {
  const [fromPython] = runFernetTool<Answer>([{ op: 'generate_key', keys: [Fernet.generateKey()] }])
  const pythonKey = fromPython?.key as string
  const nodeToken = await new Fernet(pythonKey).encrypt('node')
  const nodeKey = Fernet.generateKey()
  // fastapi_session's README builds keys with standard base64: both sides must take those.
  const standardKey = Buffer.from(randomBytes(32)).toString('base64')
  const [fromPythonKeyed, fromNodeKeyed, standard] = runFernetTool<Answer>([
    { op: 'decrypt', keys: [pythonKey], token: nodeToken },
    { op: 'encrypt', keys: [nodeKey], data: b64(new TextEncoder().encode('python')) },
    { op: 'encrypt', keys: [standardKey], data: b64(new TextEncoder().encode('standard')) }
  ])
  t.equal(Buffer.from(fromPythonKeyed?.data as string, 'base64').toString(), 'node', 'a Python key works in Node')
  t.equal(new TextDecoder().decode(await new Fernet(nodeKey).decrypt(fromNodeKeyed?.token as string)), 'python', 'a Node key works in Python')
  t.equal(new TextDecoder().decode(await new Fernet(standardKey).decrypt(standard?.token as string)), 'standard', 'a standard-base64 key works on both sides')

  const salt = 'an application salt'
  const derived = await deriveKey('correct horse battery staple, twice over', salt, { iterations: 10_000 })
  const [python] = runFernetTool<Answer>([{ op: 'derive_key', keys: [nodeKey], passphrase: 'correct horse battery staple, twice over', salt, iterations: 10_000 }])
  t.equal(derived, python?.key, 'deriveKey equals Python PBKDF2HMAC(SHA256) for the same passphrase, salt and rounds')
})

t.test('MultiFernet rotation both ways', { skip }, async (t) => {
  const [oldKey, newKey] = [Fernet.generateKey(), Fernet.generateKey()]
  const data = b64(new TextEncoder().encode('rotate me'))

  // Python made it under the old key; Node rotates; Python with the new key alone reads it.
  const [pythonOld] = runFernetTool<Answer>([{ op: 'encrypt', keys: [oldKey], data, at: NOW }])
  const rotatedByNode = await new MultiFernet([newKey, oldKey]).rotate(pythonOld?.token as string)
  const [readByPython, pythonTimestamp] = runFernetTool<Answer>([
    { op: 'decrypt', keys: [newKey], token: rotatedByNode },
    { op: 'timestamp', keys: [newKey], token: rotatedByNode }
  ])
  t.equal(readByPython?.data, data, 'Node rotation read by Python under the new key')
  t.equal(pythonTimestamp?.timestamp, NOW, 'timestamp kept')

  // Node made it under the old key; Python rotates; Node with the new key alone reads it.
  const nodeOld = await new Fernet(oldKey).encryptAtTime(fromB64(data), NOW)
  const [rotatedByPython] = runFernetTool<Answer>([{ op: 'rotate', keys: [newKey, oldKey], token: nodeOld }])
  const opened = await new Fernet(newKey).decryptDetailed(rotatedByPython?.token as string)
  t.equal(b64(opened.plaintext), data, 'Python rotation read by Node under the new key')
  t.equal(opened.timestamp, NOW, 'timestamp kept')
  await t.rejects(new Fernet(oldKey).decrypt(rotatedByPython?.token as string), InvalidToken)

  const byOldInMulti = await new MultiFernet([newKey, oldKey]).decryptDetailed(nodeOld)
  const [pythonMulti] = runFernetTool<Answer>([{ op: 'decrypt', keys: [newKey, oldKey], token: nodeOld }])
  t.equal(byOldInMulti.keyIndex, 1)
  t.equal(pythonMulti?.data, data, 'Python MultiFernet reads the old-key token too')
})

t.test('ttl and clock skew boundaries agree with Python', { skip }, async (t) => {
  const key = Fernet.generateKey()
  const fernet = new Fernet(key)
  const ttl = 100
  const [python] = runFernetTool<Answer>([{ op: 'encrypt', keys: [key], data: b64(new Uint8Array([1, 2, 3])), at: NOW }])
  const node = await fernet.encryptAtTime(new Uint8Array([1, 2, 3]), NOW)
  const moments: Array<[string, number, boolean]> = [
    ['age = ttl', NOW + ttl, true],
    ['age = ttl + 1', NOW + ttl + 1, false],
    ['skew 60 s', NOW - 60, true],
    ['skew 61 s', NOW - 61, false],
    ['fresh', NOW, true]
  ]
  const answers = runFernetTool<Answer>(moments.flatMap(([, now]) => [
    { op: 'decrypt', keys: [key], token: python?.token, ttl, now },
    { op: 'decrypt', keys: [key], token: node, ttl, now }
  ]))
  for (const [i, [name, now, valid]] of moments.entries()) {
    for (const [j, [maker, token]] of ([['Python', python?.token as string], ['Node', node]] as const).entries()) {
      const nodeVerdict = await fernet.decryptAtTime(token, ttl, now).then(() => true, (error) => {
        t.ok(error instanceof InvalidToken)
        return false
      })
      const pythonVerdict = answers[2 * i + j]?.error === undefined
      t.equal(nodeVerdict, valid, `${name}, ${maker} token: Node says ${valid ? 'valid' : 'invalid'}`)
      t.equal(pythonVerdict, valid, `${name}, ${maker} token: Python says ${valid ? 'valid' : 'invalid'}`)
    }
  }
})

t.test('what Node refuses, Python refuses', { skip }, async (t) => {
  const key = Fernet.generateKey()
  const token = await new Fernet(key).encrypt('tamper')
  const bytes = Buffer.from(token, 'base64url')
  const tampered: string[] = []
  for (const offset of [0, 1, 8, 9, 24, 25, bytes.length - 33, bytes.length - 32, bytes.length - 1]) {
    const copy = Buffer.from(bytes)
    copy[offset] = (copy[offset] as number) ^ 0x01
    tampered.push(copy.toString('base64url') + '='.repeat((4 - copy.toString('base64url').length % 4) % 4))
  }
  const answers = runFernetTool<Answer>(tampered.map((bad) => ({ op: 'decrypt', keys: [key], token: bad })))
  for (const [i, bad] of tampered.entries()) {
    await t.rejects(new Fernet(key).decrypt(bad), InvalidToken)
    t.equal(answers[i]?.error, 'InvalidToken', `Python refuses tampered token ${i}`)
  }
})
