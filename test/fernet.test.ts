import t, { type Test } from 'tap'
import { pbkdf2Sync, randomBytes } from 'node:crypto'
import {
  DEFAULT_MAX_TOKEN_LENGTH,
  Fernet,
  InvalidToken,
  type InvalidTokenReason,
  MultiFernet,
  deriveKey,
  encryptFromParts
} from '../lib/fernet/fernet.js'
import { base64, selectCodec } from '../lib/fernet/base64.js'
import { generateCases, invalidCases, unixSeconds, verifyCases } from './helpers/vectors.js'
import { spyOnSubtle } from './helpers/subtle-spy.js'

const textDecoder = new TextDecoder()
const NOW = 1_700_000_000

/** Rejects with InvalidToken, and only that, reporting `reason` to onInvalid. */
async function rejectsInvalid (t: Test, opening: (onInvalid: (reason: InvalidTokenReason) => void) => Promise<unknown>, reason: InvalidTokenReason, what: string): Promise<void> {
  const reasons: InvalidTokenReason[] = []
  try {
    await opening((r) => reasons.push(r))
    t.fail(`${what}: accepted`)
  } catch (error) {
    t.ok(error instanceof InvalidToken, `${what}: InvalidToken`)
    t.equal((error as Error).constructor, InvalidToken, `${what}: exactly InvalidToken`)
    t.equal((error as Error).message, 'Invalid Fernet token', `${what}: the one message`)
    t.same(reasons, [reason], `${what}: reason ${reason}`)
  }
}

t.test('official vectors (fernet/spec)', async (t) => {
  t.equal(generateCases.length + verifyCases.length + invalidCases.length, 10, 'all 10 cases present')

  for (const c of generateCases) {
    const fernet = new Fernet(c.secret)
    const token = await fernet[encryptFromParts](new TextEncoder().encode(c.src), unixSeconds(c.now), Uint8Array.from(c.iv as number[]))
    t.equal(token, c.token, 'generate: the exact token')
  }

  for (const c of verifyCases) {
    const fernet = new Fernet(c.secret)
    const plaintext = await fernet.decryptAtTime(c.token, c.ttl_sec as number, unixSeconds(c.now))
    t.equal(textDecoder.decode(plaintext), c.src, 'verify: the plaintext')
  }

  const expectedReason: Record<string, InvalidTokenReason> = {
    'incorrect mac': 'signature',
    'too short': 'malformed',
    'invalid base64': 'malformed',
    'payload size not multiple of block size': 'malformed',
    'payload padding error': 'padding',
    'far-future TS (unacceptable clock skew)': 'future',
    'expired TTL': 'expired',
    'incorrect IV (causes padding error)': 'padding'
  }
  t.equal(invalidCases.length, 8)
  for (const c of invalidCases) {
    const fernet = new Fernet(c.secret)
    const reason = expectedReason[c.desc as string] as InvalidTokenReason
    t.ok(reason, `known case ${c.desc}`)
    await rejectsInvalid(t, async (onInvalid) => await fernet.decryptDetailed(c.token, { ttl: c.ttl_sec as number, now: unixSeconds(c.now), onInvalid }), reason, `invalid: ${c.desc}`)
    await t.rejects(fernet.decryptAtTime(c.token, c.ttl_sec as number, unixSeconds(c.now)), InvalidToken, `invalid via decryptAtTime: ${c.desc}`)
  }
})

t.test('keys', async (t) => {
  const key = Fernet.generateKey()
  t.match(key, /^[A-Za-z0-9_-]{43}=$/, 'url-safe base64 with padding, 44 characters')
  t.equal(base64.decode(key).length, 32)
  t.not(Fernet.generateKey(), key, 'random')

  const raw = base64.decode(key)
  const standard = key.replace(/-/g, '+').replace(/_/g, '/')
  const token = await new Fernet(key).encrypt('x')
  for (const [form, input] of [['standard alphabet', standard], ['no padding', key.slice(0, -1)], ['raw bytes', raw]] as const) {
    t.equal(textDecoder.decode(await new Fernet(input).decrypt(token)), 'x', `key accepted as ${form}`)
  }

  const secretLooking = 'A'.repeat(40) + 'SECRET'
  for (const bad of [secretLooking, key + 'A', key.slice(0, 40), `${key.slice(0, 20)}!${key.slice(21)}`, ` ${key}`, '']) {
    t.throws(() => new Fernet(bad), { name: 'TypeError', message: /url-safe base64/ }, 'bad key text refused')
    try { new Fernet(bad) } catch (error) { t.notMatch((error as Error).message, bad === '' ? /^$/ : bad, 'error never echoes the key') }
  }
  t.throws(() => new Fernet(new Uint8Array(31)), { message: /32 bytes long, not 31/ })
  t.throws(() => new Fernet(42 as unknown as string), { name: 'TypeError', message: /must be a base64 string/ })

  const bytes = new Uint8Array(raw)
  const fernet = new Fernet(bytes)
  bytes.fill(0)
  t.equal(textDecoder.decode(await fernet.decrypt(token)), 'x', 'the key bytes are copied, not kept by reference')
})

t.test('encrypt and decrypt', async (t) => {
  const fernet = new Fernet(Fernet.generateKey())
  for (const data of ['', 'hello', 'é😀', 'x'.repeat(3000)]) {
    const token = await fernet.encrypt(data)
    t.match(token, /^gAAAAA[A-Za-z0-9_-]+=*$/, 'url-safe, starts with the version byte')
    t.equal(textDecoder.decode(await fernet.decrypt(token)), data)
  }
  const binary = new Uint8Array(randomBytes(1000))
  t.same(await fernet.decrypt(await fernet.encrypt(binary)), binary, 'binary round trip')

  const a = await fernet.encryptAtTime('same', NOW)
  const b = await fernet.encryptAtTime('same', NOW)
  t.not(a, b, 'a fresh IV every time')
  t.equal(await fernet.extractTimestamp(a), NOW)

  const unpadded = a.replace(/=+$/, '')
  t.not(unpadded, a)
  t.equal(textDecoder.decode(await fernet.decrypt(unpadded)), 'same', 'padding is optional when reading')

  const far = 2 ** 40 + 12345
  t.equal(await fernet.extractTimestamp(await fernet.encryptAtTime('x', far)), far, 'timestamps past 32 bits')

  await t.rejects(fernet.encryptAtTime('x', -1), { name: 'TypeError', message: /unixSeconds/ })
  await t.rejects(fernet.encryptAtTime('x', 1.5), TypeError)
  await t.rejects(fernet.encrypt(42 as unknown as string), { name: 'TypeError', message: /data must be/ })
})

t.test('a clock before 1970 reads as 1970', async (t) => {
  const { default: FakeTimers } = await import('@sinonjs/fake-timers')
  const clock = FakeTimers.install({ now: -5000, toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
  const fernet = new Fernet(Fernet.generateKey())
  const token = await fernet.encrypt('early')
  t.equal(await fernet.extractTimestamp(token), 0)
  t.equal(textDecoder.decode(await fernet.decrypt(token, { ttl: 10 })), 'early')
})

t.test('ttl and clock skew, at their boundaries', async (t) => {
  const fernet = new Fernet(Fernet.generateKey())
  const token = await fernet.encryptAtTime('x', NOW)
  t.equal(textDecoder.decode(await fernet.decryptAtTime(token, 100, NOW + 100)), 'x', 'age equal to ttl passes')
  await rejectsInvalid(t, async (onInvalid) => await fernet.decryptDetailed(token, { ttl: 100, now: NOW + 101, onInvalid }), 'expired', 'age ttl + 1')
  t.ok(await fernet.decryptAtTime(token, 100, NOW - 60), 'skew of 60 s passes')
  await rejectsInvalid(t, async (onInvalid) => await fernet.decryptDetailed(token, { ttl: 100, now: NOW - 61, onInvalid }), 'future', 'skew of 61 s')
  t.ok(await fernet.decrypt(token), 'no ttl: age is not checked')
  t.ok(await fernet.decryptDetailed(token, { now: NOW - 1000 }), 'no ttl: skew is not checked')

  const old = await fernet.encryptAtTime('x', Math.floor(Date.now() / 1000) - 50)
  t.ok(await fernet.decrypt(old, { ttl: 60 }), 'decrypt judges ttl against the clock')
  await t.rejects(fernet.decrypt(old, { ttl: 40 }), InvalidToken)

  for (const ttl of [-1, Number.NaN, Infinity, '60']) {
    await t.rejects(fernet.decrypt(token, { ttl: ttl as number }), { name: 'TypeError', message: /ttl/ }, `ttl ${String(ttl)} refused`)
  }
  await t.rejects(fernet.decryptAtTime(token, undefined as unknown as number, NOW), { name: 'TypeError', message: /needs a ttl/ })
  await t.rejects(fernet.decryptAtTime(token, 60, -5), { name: 'TypeError', message: /unixSeconds/ })
  await t.rejects(fernet.decryptDetailed(token, { now: 1.5 }), { name: 'TypeError', message: /now/ })
})

t.test('tampering: every region, every byte, rejected with InvalidToken only', async (t) => {
  const key = Fernet.generateKey()
  const fernet = new Fernet(key)
  const token = await fernet.encryptAtTime('a message of two blocks!', NOW)
  const bytes = base64.decode(token)
  t.equal(bytes.length, 57 + 32)
  const regionOf = (i: number): string => i === 0 ? 'version' : i < 9 ? 'timestamp' : i < 25 ? 'IV' : i < bytes.length - 32 ? 'ciphertext' : 'HMAC'
  const seen = new Set<string>()
  for (let i = 0; i < bytes.length; i++) {
    for (const mask of [0x01, 0x80]) {
      const tampered = bytes.slice()
      tampered[i] = (tampered[i] as number) ^ mask
      seen.add(regionOf(i))
      await rejectsInvalid(t, async (onInvalid) => await fernet.decryptDetailed(base64.encode(tampered), { onInvalid }), i === 0 ? 'malformed' : 'signature', `${regionOf(i)} byte ${i} ^ ${mask}`)
    }
  }
  t.same([...seen], ['version', 'timestamp', 'IV', 'ciphertext', 'HMAC'], 'all five regions flipped')

  // Dropping only the '=' padding leaves a valid token; any shorter text is refused.
  const letters = token.replace(/=+$/, '').length
  for (let length = 0; length < letters; length++) {
    await t.rejects(fernet.decrypt(token.slice(0, length)), InvalidToken, `truncated to ${length} characters`)
  }
  for (let length = 1; length < bytes.length; length++) {
    await t.rejects(fernet.decrypt(base64.encode(bytes.subarray(0, length))), InvalidToken, `truncated to ${length} bytes`)
  }

  const text: Array<[string, unknown, InvalidTokenReason]> = [
    ['empty', '', 'malformed'],
    ['garbage', 'not a token at all', 'malformed'],
    ['junk after padding', `${token}AAAA`, 'malformed'],
    ['padding then junk', `${token}=`, 'malformed'],
    ['whitespace', ` ${token}`, 'malformed'],
    ['newline', `${token}\n`, 'malformed'],
    ['standard alphabet', base64.encode(bytes).replace(/-/g, '+').replace(/_/g, '/') + (/[-_]/.test(token) ? '' : '+'), 'malformed'],
    ['a number', 42, 'malformed'],
    ['undefined', undefined, 'malformed'],
    ['oversized', 'A'.repeat(DEFAULT_MAX_TOKEN_LENGTH + 1), 'too-large'],
    ['wrong key', token, 'signature']
  ]
  const other = new Fernet(Fernet.generateKey())
  for (const [what, input, reason] of text) {
    await rejectsInvalid(t, async (onInvalid) => await (what === 'wrong key' ? other : fernet).decryptDetailed(input as string, { onInvalid }), reason, what)
  }
  await t.rejects(fernet.extractTimestamp('garbage'), InvalidToken)
  await t.rejects(other.extractTimestamp(token), InvalidToken, 'extractTimestamp verifies the MAC')
})

t.test('no decryption work starts before the MAC verified (no padding oracle)', async (t) => {
  const fernet = new Fernet(Fernet.generateKey())
  const token = await fernet.encryptAtTime('{"secret":"4"}', NOW)
  const bytes = base64.decode(token)
  // What a padding-oracle attacker sends: the victim's token with its last ciphertext block's
  // predecessor changed, so padding may turn bad, and a MAC that no longer matches.
  const forged = bytes.slice()
  forged[bytes.length - 33 - 16] = (forged[bytes.length - 33 - 16] as number) ^ 0x01
  const wrongMac = bytes.slice()
  wrongMac[bytes.length - 1] = (wrongMac[bytes.length - 1] as number) ^ 0x01

  const events = spyOnSubtle(t)
  for (const bad of [forged, wrongMac]) {
    await t.rejects(fernet.decrypt(base64.encode(bad)), InvalidToken)
  }
  const other = new Fernet(Fernet.generateKey())
  await t.rejects(other.decrypt(token), InvalidToken)
  const multi = new MultiFernet([other, new Fernet(Fernet.generateKey())])
  await t.rejects(multi.decrypt(token), InvalidToken)
  t.notOk(events.includes('decrypt:start'), 'a token whose MAC fails never reaches subtle.decrypt, under any key')
  t.ok(events.filter((event) => event === 'verify:start').length >= 5, 'each of them had its MAC checked')

  events.length = 0
  await t.rejects(fernet.decryptAtTime(token, 10, NOW + 11), InvalidToken)
  await t.rejects(fernet.decryptAtTime(token, 10, NOW - 61), InvalidToken)
  t.notOk(events.includes('decrypt:start'), 'an expired or future token is not decrypted either')

  events.length = 0
  t.equal(textDecoder.decode(await fernet.decrypt(token)), '{"secret":"4"}')
  t.same(events, ['verify:start', 'verify:end', 'decrypt:start', 'decrypt:end'], 'a good token: decryption starts only once verify has settled')

  events.length = 0
  const rotated = new MultiFernet([other, fernet])
  t.equal(textDecoder.decode(await rotated.decrypt(token)), '{"secret":"4"}')
  t.same(events, ['verify:start', 'verify:end', 'verify:start', 'verify:end', 'decrypt:start', 'decrypt:end'], 'MultiFernet: decrypts once, under the key whose MAC matched')

  events.length = 0
  await t.rejects(fernet.decrypt(base64.encode(forged)), InvalidToken)
  t.same(events, ['verify:start', 'verify:end'], 'refusing a forged token is the MAC check alone, whatever its ciphertext holds')
})

t.test('maxTokenLength', async (t) => {
  t.throws(() => new Fernet(Fernet.generateKey(), { maxTokenLength: 50 }), { message: /at least 100/ })
  t.throws(() => new Fernet(Fernet.generateKey(), { maxTokenLength: 1.5 }), TypeError)
  const fernet = new Fernet(Fernet.generateKey(), { maxTokenLength: 200 })
  t.equal(fernet.maxTokenLength, 200)
  const token = await fernet.encrypt('x'.repeat(79))
  t.ok(token.length <= 200, 'largest token that fits')
  await t.rejects(fernet.encrypt('x'.repeat(80)), { name: 'RangeError', message: /80 bytes.*maxTokenLength \(200\)/ }, 'refuses to make a token it would not read')
  const big = await new Fernet(Fernet.generateKey(), { maxTokenLength: 10_000 }).encrypt('x'.repeat(5000))
  await rejectsInvalid(t, async (onInvalid) => await fernet.decryptDetailed(big, { onInvalid }), 'too-large', 'over the bound')
  t.equal(new Fernet(Fernet.generateKey()).maxTokenLength, DEFAULT_MAX_TOKEN_LENGTH)
})

t.test('Fernet is recognised across the ESM and CommonJS copies', async (t) => {
  t.ok({ [Symbol.for('fastify-encrypted-session.Fernet')]: true } instanceof Fernet)
  t.notOk({} instanceof Fernet)
  t.notOk((null as unknown) instanceof Fernet)
  t.ok(new Fernet(Fernet.generateKey()) instanceof Fernet)
})

t.test('a key decoded from text leaves no copy in Node\'s shared Buffer pool', async (t) => {
  const key = Fernet.generateKey()
  // Decoded without Buffer, so the probe itself leaves nothing in the pool.
  const raw = selectCodec({}).decode(key)
  new Fernet(key) // eslint-disable-line no-new
  const pool = new Uint8Array(Buffer.from('probe').buffer)
  t.equal(Buffer.from(pool).indexOf(raw), -1, 'the raw key bytes are not in the pool')
})

t.test('InvalidToken', async (t) => {
  const error = new InvalidToken()
  t.equal(error.name, 'InvalidToken')
  t.ok(error instanceof Error)
  t.notOk(new Error('x') instanceof InvalidToken)
  t.notOk((null as unknown) instanceof InvalidToken)
  t.notOk(('str' as unknown) instanceof InvalidToken)
  const fromOtherCopy = { [Symbol.for('fastify-encrypted-session.InvalidToken')]: true }
  t.ok(fromOtherCopy instanceof InvalidToken, 'recognised across the ESM and CommonJS copies by its brand')
})

t.test('MultiFernet', async (t) => {
  const [k1, k2, k3] = [Fernet.generateKey(), Fernet.generateKey(), Fernet.generateKey()]
  t.throws(() => new MultiFernet([]), { name: 'TypeError', message: /non-empty array/ })
  t.throws(() => new MultiFernet('k' as unknown as string[]), TypeError)

  const multi = new MultiFernet([new Fernet(k1), k2])
  const byFirst = await multi.encryptAtTime('one', NOW)
  t.equal(textDecoder.decode(await new Fernet(k1).decrypt(byFirst)), 'one', 'encrypts with the first key')
  t.equal(textDecoder.decode(await multi.decrypt(await multi.encrypt('now'))), 'now')

  const bySecond = await new Fernet(k2).encryptAtTime('two', NOW)
  const opened = await multi.decryptDetailed(bySecond)
  t.equal(opened.keyIndex, 1, 'tells which key opened it')
  t.equal(opened.timestamp, NOW)
  t.equal((await multi.decryptDetailed(byFirst)).keyIndex, 0)
  t.equal(await multi.extractTimestamp(bySecond), NOW)
  t.ok(await multi.decryptAtTime(bySecond, 10, NOW + 10))

  await rejectsInvalid(t, async (onInvalid) => await multi.decryptDetailed(await new Fernet(k3).encrypt('x'), { onInvalid }), 'signature', 'unknown key')
  await t.rejects(multi.extractTimestamp(await new Fernet(k3).encrypt('x')), InvalidToken)
  await rejectsInvalid(t, async (onInvalid) => await multi.decryptDetailed(bySecond, { ttl: 5, now: NOW + 6, onInvalid }), 'expired', 'expired under the second key')

  const rotated = await multi.rotate(bySecond)
  t.equal(textDecoder.decode(await new Fernet(k1).decrypt(rotated)), 'two', 'rotate re-encrypts under the first key')
  await t.rejects(new Fernet(k2).decrypt(rotated), InvalidToken, 'no longer under the old key')
  t.equal(await multi.extractTimestamp(rotated), NOW, 'rotate keeps the timestamp')
  t.equal((await multi.decryptDetailed(await multi.rotate(byFirst))).keyIndex, 0)
  await t.rejects(multi.rotate('garbage'), InvalidToken)

  const past53 = new Uint8Array([0x10, 0, 0, 0, 0, 0, 0, 1]) // 2^60 + 1 seconds
  const farToken = await new Fernet(k2)[encryptFromParts](new TextEncoder().encode('far'), past53, new Uint8Array(16))
  const farRotated = await multi.rotate(farToken)
  t.same(base64.decode(farRotated).subarray(1, 9), past53, 'rotate copies a timestamp past 2^53 exactly, as pyca does')

  const bounded = new MultiFernet([new Fernet(k1, { maxTokenLength: 200 }), new Fernet(k2, { maxTokenLength: 300 })])
  t.equal(bounded.maxTokenLength, 300, 'the largest bound of its keys')
  t.equal(new MultiFernet([k1], { maxTokenLength: 400 }).maxTokenLength, 400, 'options apply to keys given as text')
})

t.test('deriveKey', async (t) => {
  const salt = 'sixteen byte salt'
  const key = await deriveKey('correct horse battery staple, twice over', salt, { iterations: 1000 })
  const expected = pbkdf2Sync('correct horse battery staple, twice over', salt, 1000, 32, 'sha256').toString('base64url') + '='
  t.equal(key, expected, 'PBKDF2-HMAC-SHA256, as node:crypto computes it')
  t.ok(new Fernet(key), 'a usable Fernet key')
  t.equal(await deriveKey(new TextEncoder().encode('correct horse battery staple, twice over'), new TextEncoder().encode(salt), { iterations: 1000 }), key, 'bytes and text alike')
  t.equal(await deriveKey('correct horse battery staple, twice over', salt), pbkdf2Sync('correct horse battery staple, twice over', salt, 600_000, 32, 'sha256').toString('base64url') + '=', '600,000 iterations by default')

  await t.rejects(deriveKey('', salt), { message: /passphrase must be at least 32 bytes \(it is 0\)/ })
  await t.rejects(deriveKey('hunter', salt), { message: /passphrase must be at least 32 bytes \(it is 6\); a generated key/ }, 'the floor of the secret option')
  await t.rejects(deriveKey(new Uint8Array(31), salt), { message: /at least 32 bytes/ }, 'bytes too')
  await t.resolves(deriveKey('p'.repeat(32), salt, { iterations: 1 }), '32 bytes are enough')
  await t.rejects(deriveKey('p'.repeat(32), 'short'), { message: /at least 16 bytes/ })
  await t.rejects(deriveKey('p'.repeat(32), salt, { iterations: 0 }), { message: /iterations/ })
  await t.rejects(deriveKey(42 as unknown as string, salt), { message: /passphrase must be a string/ })
})
