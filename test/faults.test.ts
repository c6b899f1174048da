// Faults around the plugin: a clock that jumps backwards and forwards, a key taken out of the
// list at a restart, and authentic tokens whose JSON is valid but not an object. In each, the
// route runs and answers 2xx, a session that cannot be used becomes a fresh empty one with its
// cookie cleared (the reason logged at debug level), and nothing is logged at warn or error.
import t, { type Test } from 'tap'
import FakeTimers from '@sinonjs/fake-timers'
import type { FastifyInstance } from 'fastify'
import { Fernet, MAX_CLOCK_SKEW } from '../index.js'
import { buildApp, isCleared, setCookie, type LogLine } from './helpers/app.js'

const T0 = 1_750_000_000
const TTL = 3600
const K1 = Fernet.generateKey()
const K2 = Fernet.generateKey()
const K3 = Fernet.generateKey()

function fakeClock (t: Test, now = T0): ReturnType<typeof FakeTimers.install> {
  const clock = FakeTimers.install({ now: now * 1000, toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
  return clock
}

/** Sets the fake clock to `seconds` (Unix), forwards or backwards. */
function setClock (clock: ReturnType<typeof FakeTimers.install>, seconds: number): void {
  clock.setSystemTime(seconds * 1000)
}

const routes = (app: FastifyInstance): void => {
  app.get('/', async (request) => {
    const visits = (request.session.get('visits') ?? 0) + 1
    request.session.set('visits', visits)
    return { isNew: request.session.isNew, visits }
  })
  app.get('/read', async (request) => ({ isNew: request.session.isNew, data: request.session.data() }))
}

interface Visit { status: number, body: { isNew: boolean, visits?: number, data?: Record<string, unknown> }, cookie: string | undefined, cleared: boolean, reasons: unknown[], loud: LogLine[] }

/** One request with the given session cookie; what came back, and what was logged. */
async function visit (app: FastifyInstance, logs: LogLine[], token: string | undefined, url = '/'): Promise<Visit> {
  logs.length = 0
  const response = await app.inject({ url, cookies: token === undefined ? {} : { session: token } })
  const cookie = setCookie(response)
  return {
    status: response.statusCode,
    body: response.json(),
    cookie: cookie === undefined || isCleared(cookie) ? undefined : cookie.value,
    cleared: isCleared(cookie),
    reasons: logs.filter((line) => /session cookie ignored/.test(line.msg)).map((line) => line.reason),
    loud: logs.filter((line) => line.level >= 40)
  }
}

async function timestampOf (token: string, key = K1): Promise<number> {
  return await new Fernet(key).extractTimestamp(token)
}

/** A fresh session in place of a refused cookie: 2xx, new, cleared or replaced, reason logged. */
function assertFresh (t: Test, result: Visit, reason: string, label: string): void {
  t.equal(result.status, 200, `${label}: 200`)
  t.equal(result.body.isNew, true, `${label}: a fresh session`)
  t.same(result.reasons, [reason], `${label}: logged at debug as ${reason}`)
  t.same(result.loud, [], `${label}: nothing at warn or error level`)
}

t.test('the clock jumps forwards: a token expires after exactly ttl seconds', async (t) => {
  const clock = fakeClock(t)
  const { app, logs } = await buildApp({ key: K1, ttl: TTL, rolling: false }, routes)
  const issued = await visit(app, logs, undefined)
  const token = issued.cookie as string
  t.equal(await timestampOf(token), T0, 'issued at T0')

  setClock(clock, T0 + TTL)
  let result = await visit(app, logs, token, '/read')
  t.same([result.status, result.body], [200, { isNew: false, data: { visits: 1 } }], 'at T0 + ttl: still valid')
  setClock(clock, T0 + TTL + 1)
  result = await visit(app, logs, token, '/read')
  assertFresh(t, result, 'expired', 'at T0 + ttl + 1')
  t.same(result.body.data, {}, '... and empty')
  t.ok(result.cleared, '... the expired cookie is cleared')

  // A jump of years, and to the last day JavaScript dates reach: still no error, and a new
  // session is made at that time.
  for (const [label, seconds] of [['a year on', T0 + 365 * 86_400], ['the year 2500', 16_725_225_600], ['the last second of JavaScript time', 8_640_000_000_000]] as const) {
    setClock(clock, seconds)
    result = await visit(app, logs, token)
    assertFresh(t, result, 'expired', label)
    t.equal(result.body.visits, 1, `${label}: the counter starts again`)
    t.equal(await timestampOf(result.cookie as string), seconds, `${label}: the new cookie carries that time`)
    const next = await visit(app, logs, result.cookie, '/read')
    t.same(next.body, { isNew: false, data: { visits: 1 } }, `${label}: and it opens at that time`)
  }
})

t.test('the clock jumps backwards: 60 s of skew are allowed, no more', async (t) => {
  const clock = fakeClock(t)
  const { app, logs } = await buildApp({ key: K1, ttl: TTL, rolling: false }, routes)
  const token = (await visit(app, logs, undefined)).cookie as string
  t.equal(MAX_CLOCK_SKEW, 60)

  setClock(clock, T0 - MAX_CLOCK_SKEW)
  let result = await visit(app, logs, token, '/read')
  t.same([result.status, result.body], [200, { isNew: false, data: { visits: 1 } }], 'a token 60 s in the future: valid')
  setClock(clock, T0 - MAX_CLOCK_SKEW - 1)
  result = await visit(app, logs, token, '/read')
  assertFresh(t, result, 'future', 'a token 61 s in the future')
  t.ok(result.cleared, '... its cookie is cleared')
  setClock(clock, T0 - 86_400)
  assertFresh(t, await visit(app, logs, token, '/read'), 'future', 'a day back')

  // The plugin keeps no state: once the clock is right again, the same token is valid again.
  setClock(clock, T0 + 10)
  result = await visit(app, logs, token, '/read')
  t.same(result.body, { isNew: false, data: { visits: 1 } }, 'the clock put right: the token opens again')

  // Back and forth around the skew, in a loop of jumps.
  let wrong = 0
  for (let offset = -200; offset <= TTL + 200; offset += 7) {
    setClock(clock, T0 + offset)
    result = await visit(app, logs, token, '/read')
    const valid = offset >= -MAX_CLOCK_SKEW && offset <= TTL
    if (result.status !== 200 || result.body.isNew === valid || result.loud.length > 0) wrong++
  }
  t.equal(wrong, 0, 'from 200 s before issue to 200 s past expiry, in 7 s jumps: valid exactly in [T0 - 60, T0 + ttl]')
})

t.test('the clock jumps backwards after a rolling renewal', async (t) => {
  const clock = fakeClock(t)
  const { app, logs } = await buildApp({ key: K1, ttl: TTL, rolling: 900 }, routes)
  const first = (await visit(app, logs, undefined)).cookie as string
  setClock(clock, T0 + 900)
  const renewed = await visit(app, logs, first, '/read')
  t.equal(await timestampOf(renewed.cookie as string), T0 + 900, 'renewed at T0 + 900 with the clock ahead')
  // The clock is corrected back by 15 minutes: the renewed token is now 900 s in the future.
  setClock(clock, T0 + 30)
  assertFresh(t, await visit(app, logs, renewed.cookie, '/read'), 'future', 'renewed during a 900 s jump, read after the clock is corrected')
  t.same((await visit(app, logs, first, '/read')).body, { isNew: false, data: { visits: 1 } }, 'the older token, issued at the right time, still opens')
  // Within the skew the renewal survives a correction.
  setClock(clock, T0 + 960)
  const again = await visit(app, logs, first, '/read')
  setClock(clock, T0 + 905)
  t.same((await visit(app, logs, again.cookie, '/read')).body, { isNew: false, data: { visits: 1 } }, 'a correction of 55 s: the renewal still opens')
})

t.test('the clock reset to 1970 (a machine without a working real-time clock)', async (t) => {
  const clock = fakeClock(t)
  const { app, logs } = await buildApp({ key: K1, ttl: TTL }, routes)
  const token = (await visit(app, logs, undefined)).cookie as string
  setClock(clock, 1000)
  const reset = await visit(app, logs, token)
  assertFresh(t, reset, 'future', 'a current token, read in 1970')
  t.equal(await timestampOf(reset.cookie as string), 1000, 'a new session is still made, stamped with the wrong time')
  setClock(clock, T0)
  assertFresh(t, await visit(app, logs, reset.cookie, '/read'), 'expired', 'the 1970 token once the clock is right')
  t.same((await visit(app, logs, token, '/read')).body, { isNew: false, data: { visits: 1 } }, 'and the real token opens again')
})

t.test('the clock jumps forwards past an absolute lifetime', async (t) => {
  const clock = fakeClock(t)
  const { app, logs } = await buildApp({ key: K1, ttl: TTL, rolling: 600, absoluteLifetime: 7200 }, routes)
  let token = (await visit(app, logs, undefined)).cookie as string
  // An active user: a request every 1000 s keeps the token rolling...
  for (let at = 1000; at <= 7000; at += 1000) {
    setClock(clock, T0 + at)
    const result = await visit(app, logs, token)
    t.equal(result.body.isNew, false, `still in at T0 + ${at}`)
    token = result.cookie as string
  }
  // ...until the clock passes the absolute lifetime.
  setClock(clock, T0 + 7201)
  assertFresh(t, await visit(app, logs, token, '/read'), 'lifetime-exceeded', 'past the absolute lifetime')
  // A small backwards jump (within the skew of the last renewal at T0 + 7000) opens it again,
  // and gives it no extra life once time catches up.
  setClock(clock, T0 + 6990)
  t.equal((await visit(app, logs, token, '/read')).body.isNew, false, 'the clock back within the lifetime: open again')
  setClock(clock, T0 + 7201)
  assertFresh(t, await visit(app, logs, token, '/read'), 'lifetime-exceeded', 'and forwards again: ended again')
})

t.test('a key removed at a restart: its sessions become fresh sessions, without an error', async (t) => {
  fakeClock(t)
  const one = await buildApp({ key: K1 }, routes)
  const underK1 = (await visit(one.app, one.logs, undefined)).cookie as string
  const other = (await visit(one.app, one.logs, underK1)).cookie as string // visits: 2, still under K1

  // Rotation: [K2, K1]. A K1 cookie is read and re-issued under K2.
  const two = await buildApp({ key: [K2, K1] }, routes)
  const rotated = await visit(two.app, two.logs, underK1, '/read')
  t.same(rotated.body, { isNew: false, data: { visits: 1 } }, 'with [new, old]: the old-key cookie opens')
  t.ok(await new Fernet(K2).decrypt(rotated.cookie as string), 'and is re-issued under the new key')

  // K1 removed: [K2]. A cookie still under K1 gives a fresh session; the rotated one opens.
  const three = await buildApp({ key: [K2] }, routes)
  const removed = await visit(three.app, three.logs, other)
  assertFresh(t, removed, 'signature', 'with K1 removed, a K1 cookie')
  t.equal(removed.body.visits, 1, '... the route ran on an empty session')
  t.ok(await new Fernet(K2).decrypt(removed.cookie as string), '... whose cookie is under K2')
  t.same((await visit(three.app, three.logs, rotated.cookie, '/read')).body, { isNew: false, data: { visits: 1 } }, 'the cookie re-issued under K2 still opens')

  // A middle key removed: [K3, K2, K1] to [K3, K1].
  const four = await buildApp({ key: [K3, K2, K1] }, routes)
  const underK2 = (await visit(four.app, four.logs, rotated.cookie, '/read')).cookie as string
  t.ok(await new Fernet(K3).decrypt(underK2), 'under [K3, K2, K1] the K2 cookie is re-issued under K3')
  const five = await buildApp({ key: [K3, K1] }, routes)
  assertFresh(t, await visit(five.app, five.logs, rotated.cookie, '/read'), 'signature', 'with the middle key K2 removed, a K2 cookie')
  t.same((await visit(five.app, five.logs, underK1, '/read')).body, { isNew: false, data: { visits: 1 } }, 'a K1 cookie still opens')
  t.same((await visit(five.app, five.logs, underK2, '/read')).body, { isNew: false, data: { visits: 1 } }, 'a K3 cookie opens')

  // Every key replaced: everyone gets a fresh session, nobody an error.
  const six = await buildApp({ key: Fernet.generateKey() }, routes)
  for (const token of [underK1, other, rotated.cookie as string, underK2]) {
    assertFresh(t, await visit(six.app, six.logs, token, '/read'), 'signature', 'every key replaced')
  }
})

t.test('authentic tokens whose JSON is valid but not an object', async (t) => {
  fakeClock(t)
  const { app, logs } = await buildApp({ key: K1 }, routes)
  const fernet = new Fernet(K1)
  const cases = ['[]', '[{"visits":5}]', '["visits",5]', '5', '0', '-1.5e300', '1e999', '"visits"', '""', 'null', 'true', 'false', ' [ ] ', '[[[[[[[[[[]]]]]]]]]]']
  for (const json of cases) {
    t.doesNotThrow(() => JSON.parse(json), `${json} is valid JSON`)
    const token = await fernet.encryptAtTime(json, T0)
    const read = await visit(app, logs, token, '/read')
    assertFresh(t, read, 'not-object', `JSON ${json}`)
    t.same(read.body.data, {}, `JSON ${json}: the session is empty`)
    t.ok(read.cleared, `JSON ${json}: its cookie is cleared`)
    const written = await visit(app, logs, token)
    t.equal(written.body.visits, 1, `JSON ${json}: the route can use the fresh session`)
    t.same(JSON.parse(new TextDecoder().decode(await fernet.decrypt(written.cookie as string))), { visits: 1 }, `JSON ${json}: and the new cookie holds an object`)
  }
  // For contrast, the same shapes inside an object are a session like any other.
  const nested = await fernet.encryptAtTime('{"list":[],"n":5,"s":"x","z":null,"b":true}', T0)
  t.same((await visit(app, logs, nested, '/read')).body, { isNew: false, data: { list: [], n: 5, s: 'x', z: null, b: true } }, 'those values inside an object are kept')
})

// With the system clock before 1970-01-01 (Date.now() < 0) a save used to answer 500: the
// negative time reached Fernet's encryptAtTime, whose TypeError escaped onSend. The plugin now
// reads such a clock as 1970.
t.test('the clock set before 1970', async (t) => {
  fakeClock(t, -5)
  const { app, logs } = await buildApp({ key: K1 }, routes)
  const read = await visit(app, logs, undefined, '/read')
  t.same([read.status, read.body], [200, { isNew: true, data: {} }], 'a read answers 200')
  const written = await visit(app, logs, undefined)
  t.equal(written.status, 200, 'a write answers 200 (the session may go unsaved)')
  t.same(written.loud.filter((line) => !/fastify-encrypted-session/.test(line.msg)), [], 'no error escapes the hook')
})
