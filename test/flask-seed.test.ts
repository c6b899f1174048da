// Live, against the library the project began from: flask-encrypted-cookies-session 0.2.4
// (../shared/python, unpacked unchanged), in a real Flask process set up as its README says,
// and the plugin, through one cookie jar that keeps what a browser keeps. What crosses, what the
// plugin must not lose, and the library's own faults the README warns of.
import t, { type Test } from 'tap'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import Fastify from 'fastify'
import encryptedSession, { Fernet } from '../index.js'
import { tokenTextLength } from '../lib/fernet/fernet.js'
import { PYTHON, pythonMissing, seedArchive, unpackSeedLibrary } from './helpers/python.js'

const { archive, missing } = seedArchive()
const skip = pythonMissing(['cryptography', 'flask']) ?? missing ?? false

/** A browser's cookies for 127.0.0.1: it drops a cookie whose name and value pass 4,096 bytes. */
class BrowserJar {
  readonly cookies = new Map<string, string>()
  readonly dropped: string[] = []

  header (): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  }

  take (response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim())
      const name = pair.slice(0, pair.indexOf('='))
      const value = pair.slice(pair.indexOf('=') + 1)
      if (Buffer.byteLength(name + value) > 4096) {
        this.dropped.push(name)
        continue
      }
      const expired = attributes.some((a) => /^max-age=0$/i.test(a) || /^expires=.*1970/i.test(a))
      if (expired || value === '') this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }
}

interface Answer { status: number, body: any, setCookie: boolean }

function client (jar: BrowserJar) {
  return async (base: string, path: string, body?: string): Promise<Answer> => {
    const response = await fetch(base + path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { cookie: jar.header(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body
    })
    jar.take(response)
    const text = await response.text()
    let parsed: unknown = text
    try { parsed = JSON.parse(text) } catch {}
    return { status: response.status, body: parsed, setCookie: response.headers.getSetCookie().length > 0 }
  }
}

/** The seed library's Flask app (test/fixtures/flask/seed_app.py) on a free port. */
export async function startSeedFlask (t: Test, keys: string, env: Record<string, string> = {}): Promise<string> {
  const { pythonPath, remove } = unpackSeedLibrary(archive as string)
  const child: ChildProcess = spawn(PYTHON, ['-B', 'test/fixtures/flask/seed_app.py'], {
    env: { ...process.env, ...env, SESSION_KEYS: keys, PORT: '0', PYTHONPATH: pythonPath },
    stdio: ['ignore', 'pipe', 'ignore']
  })
  t.teardown(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
    remove()
  })
  return await new Promise<string>((resolve, reject) => {
    let output = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const match = /LISTENING (\d+)/.exec(output)
      if (match !== null) resolve(`http://127.0.0.1:${match[1] as string}`)
    })
    child.once('exit', (code) => { reject(new Error(`the seed Flask app exited (${String(code)}) before listening: ${output}`)) })
  })
}

async function startFastify (t: Test, key: string): Promise<string> {
  const app = Fastify()
  await app.register(encryptedSession, { key, cookie: { secure: false } })
  app.get('/counter', async (request) => {
    const visits = (request.session.get('visits') ?? 0) + 1
    request.session.set('visits', visits)
    return { visits }
  })
  app.post('/set', async (request) => {
    for (const [key, value] of Object.entries(request.body as Record<string, unknown>)) request.session.set(key, value)
    return {}
  })
  // What each value is here, without changing the session: JSON has no word for NaN.
  app.get('/types', async (request) => Object.fromEntries(Object.keys(request.session).map((key) => {
    const value: unknown = request.session.get(key as never)
    return [key, `${typeof value} ${String(value)}`]
  })))
  app.get('/keys', async (request) => ({ keys: Object.keys(request.session.data()).sort() }))
  t.teardown(async () => { await app.close() })
  return await app.listen({ host: '127.0.0.1', port: 0 })
}

/** Python's json.dumps of a flat object: ", " and ": " between items. */
function pythonDumps (data: Record<string, string | number>): string {
  return `{${Object.entries(data).map(([key, value]) => `${JSON.stringify(key)}: ${JSON.stringify(value)}`).join(', ')}}`
}

t.test('a session a browser keeps is read, whoever wrote it', { skip }, async (t) => {
  const key = Fernet.generateKey()
  const [flask, fastify] = await Promise.all([startSeedFlask(t, key), startFastify(t, key)])

  await t.test('Flask\'s 4,044-character token', async (t) => {
    const jar = new BrowserJar()
    const call = client(jar)
    // {"note": "xxx..."} as Python writes it, sized to a token of 4,044 characters.
    let length = 2900
    while (tokenTextLength(Buffer.byteLength(pythonDumps({ note: 'x'.repeat(length + 1) }))) <= 4044) length++
    t.equal((await call(flask, '/set', JSON.stringify({ key: 'note', value: 'x'.repeat(length) }))).status, 200)
    const token = jar.cookies.get('session') as string
    t.equal(token.length, 4044, 'Flask wrote a token of 4,044 characters, more than maxSessionSize (4,000)')
    t.same(jar.dropped, [], 'which the browser keeps (4,052 bytes of name and value)')
    const read = await call(fastify, '/keys')
    t.same(read.body, { keys: ['note'] }, 'the plugin opens it')
    t.notOk(read.setCookie, 'and leaves the cookie as it is')
    t.same((await call(flask, '/peek')).body, { keys: ['note'] }, 'so Flask still has it')
  })

  await t.test('the plugin\'s session, rewritten by Flask with Python\'s separators', async (t) => {
    const jar = new BrowserJar()
    const call = client(jar)
    // Many small keys: Python's ", " and ": " add two characters for each.
    const data: Record<string, string | number> = { visits: 1 }
    for (let i = 0; i < 40; i++) data[`k${String(i).padStart(2, '0')}`] = i
    data.note = ''
    while (tokenTextLength(Buffer.byteLength(pythonDumps({ ...data, note: (data.note as string) + 'x' }))) <= 4088) data.note += 'x'
    t.equal((await call(fastify, '/set', JSON.stringify(data))).status, 200)
    const ours = jar.cookies.get('session') as string
    t.ok(ours.length <= 4000, `the plugin wrote ${ours.length} characters (${Buffer.byteLength(JSON.stringify(data))} bytes of JSON), within maxSessionSize`)
    t.same((await call(flask, '/counter')).body, { visits: 2 }, 'Flask reads it and counts')
    const theirs = jar.cookies.get('session') as string
    t.ok(theirs.length > 4000 && theirs.length <= 4088, `Flask rewrote it at ${theirs.length} characters`)
    t.same(jar.dropped, [], 'which the browser keeps')
    t.same((await call(fastify, '/counter')).body, { visits: 3 }, 'the plugin reads it back')
    t.same(jar.dropped, [], 'and saves it again')
    t.ok((jar.cookies.get('session') as string).length <= 4000, 'within maxSessionSize')
    t.same((await call(flask, '/counter')).body, { visits: 4 }, 'and Flask goes on')
  })

  await t.test('a token no browser keeps is refused before it is decrypted', async (t) => {
    const jar = new BrowserJar()
    const call = client(jar)
    const big = await new Fernet(key).encrypt(JSON.stringify({ note: 'x'.repeat(3200) }))
    t.ok(big.length > 4096 - 'session'.length, `a token of ${big.length} characters`)
    jar.cookies.set('session', big)
    const answer = await call(fastify, '/keys')
    t.same([answer.status, answer.body], [200, { keys: [] }], 'a fresh session')
    t.notOk(jar.cookies.has('session'), 'and the cookie is cleared')
  })
})

t.test('NaN and the infinities from Python', { skip }, async (t) => {
  const key = Fernet.generateKey()
  const [flask, fastify] = await Promise.all([startSeedFlask(t, key), startFastify(t, key)])
  const jar = new BrowserJar()
  const call = client(jar)
  // Python's json.loads reads the request body: these are Python floats in the session.
  for (const body of ['{"key": "ratio", "value": NaN}', '{"key": "top", "value": Infinity}', '{"key": "bottom", "value": -Infinity}', '{"key": "label", "value": "NaN Infinity"}', '{"key": "list", "value": [1, NaN, -Infinity]}']) {
    t.equal((await call(flask, '/set', body)).status, 200)
  }
  const token = jar.cookies.get('session') as string
  const text = new TextDecoder().decode(await new Fernet(key).decrypt(token))
  t.match(text, /"ratio": NaN/, `Python wrote ${text}`)
  const types = await call(fastify, '/types')
  t.same(types.body, {
    ratio: 'number NaN',
    top: 'number Infinity',
    bottom: 'number -Infinity',
    label: 'string NaN Infinity',
    list: 'object 1,NaN,-Infinity'
  }, 'the plugin reads them as JavaScript\'s NaN, Infinity and -Infinity, and strings as strings')
  t.notOk(types.setCookie, 'read, the session is not rewritten')
  t.same((await call(flask, '/inspect')).body.ratio, { type: 'float', repr: 'nan' }, 'so Flask still has its NaN')

  t.same((await call(fastify, '/counter')).body, { visits: 1 }, 'the plugin changes the session')
  const inspect = (await call(flask, '/inspect')).body
  t.same(inspect, {
    ratio: { type: 'NoneType', repr: 'None' },
    top: { type: 'NoneType', repr: 'None' },
    bottom: { type: 'NoneType', repr: 'None' },
    label: { type: 'str', repr: "'NaN Infinity'" },
    list: { type: 'list', repr: '[1, None, None]' },
    visits: { type: 'int', repr: '1' }
  }, 'written back as JSON.stringify writes them: null, None in Python; every other key kept')
})

t.test('integers past 2^53 from Python', { skip }, async (t) => {
  const key = Fernet.generateKey()
  const [flask, fastify] = await Promise.all([startSeedFlask(t, key), startFastify(t, key)])
  const jar = new BrowserJar()
  const call = client(jar)
  await call(flask, '/set', '{"key": "big", "value": 18446744073709551617}')
  await call(flask, '/set', '{"key": "huge", "value": 1000000000000000000001}')
  await call(flask, '/set', '{"key": "safe", "value": 9007199254740991}')
  t.same((await call(fastify, '/types')).body, { big: 'number 18446744073709552000', huge: 'number 1e+21', safe: 'number 9007199254740991' }, 'read as the nearest double')
  t.same((await call(flask, '/inspect')).body.big, { type: 'int', repr: '18446744073709551617' }, 'a session the plugin only read keeps the exact text')
  await call(fastify, '/counter')
  const inspect = (await call(flask, '/inspect')).body
  t.same(inspect.big, { type: 'int', repr: '18446744073709552000' }, 'rewritten by the plugin: the double, still an int in Python')
  t.same(inspect.huge, { type: 'float', repr: '1e+21' }, 'from 10^21 on, JavaScript writes an exponent: a float in Python')
  t.same(inspect.safe, { type: 'int', repr: '9007199254740991' }, 'up to 2^53 - 1 exact')
})

t.test('the library\'s own faults, which the README warns of', { skip }, async (t) => {
  const [first, second, third] = [Fernet.generateKey(), Fernet.generateKey(), Fernet.generateKey()]
  const flask = await startSeedFlask(t, [first, second, third].join(','))
  const jar = new BrowserJar()
  const call = client(jar)
  jar.cookies.set('session', 'gAAAAAgarbage')
  t.equal((await call(flask, '/peek')).status, 500, 'an unreadable token is a 500 (Flask catches only BadSignature)')
  jar.cookies.set('session', await new Fernet(first).encrypt('not json'))
  t.equal((await call(flask, '/peek')).status, 500, 'so is an authentic token that is not JSON')
  jar.cookies.set('session', await new Fernet(first).encryptAtTime('{"visits": 1}', 1_000_000))
  t.same((await call(flask, '/peek')).body, { keys: ['visits'] }, 'a token from 1970 still opens: no ttl')
  jar.cookies.set('session', await new Fernet(second).encrypt('{"visits": 1}'))
  t.same((await call(flask, '/peek')).body, { keys: ['visits'] }, 'the second key opens')
  jar.cookies.set('session', await new Fernet(third).encrypt('{"visits": 1}'))
  t.equal((await call(flask, '/peek')).status, 500, 'the third is never used (the list is split at its first comma): a 500')
  jar.cookies.set('session', await new Fernet(first).encryptAtTime('{"visits": 1}', Math.floor(Date.now() / 1000) - 86_000))
  const read = await call(flask, '/peek')
  t.same([read.body, read.setCookie], [{ keys: ['visits'] }, false], 'a session only read is never renewed (it is not permanent)')
})
