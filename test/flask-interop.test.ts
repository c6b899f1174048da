// Live interop with a real Flask app (test/fixtures/flask/app.py) on loopback: one browser-like
// cookie jar talks to both servers, as a user would move between a Flask and a Fastify service
// on the same site.
import t, { type Test } from 'tap'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import type { FastifyInstance } from 'fastify'
import Fastify from 'fastify'
import encryptedSession, { Fernet } from '../index.js'
import { PYTHON, pythonMissing } from './helpers/python.js'

const skip = pythonMissing(['cryptography', 'flask'])

/** The cookies a browser would keep for 127.0.0.1, whatever the port. */
class Jar {
  readonly cookies = new Map<string, string>()

  header (): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  }

  take (response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim())
      const name = pair.slice(0, pair.indexOf('='))
      const value = pair.slice(pair.indexOf('=') + 1)
      const expired = attributes.some((a) => /^max-age=0$/i.test(a) || /^expires=.*1970/i.test(a))
      if (expired || value === '') this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }
}

async function startFlask (t: Test, keys: string[]): Promise<string> {
  const child: ChildProcess = spawn(PYTHON, ['test/fixtures/flask/app.py'], {
    env: { ...process.env, SESSION_KEYS: keys.join(','), PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  })
  // Keep reading stdout after the port line: a closed pipe would kill the app on its next print.
  return await new Promise<string>((resolve, reject) => {
    let output = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const match = /LISTENING (\d+)/.exec(output)
      if (match !== null) resolve(`http://127.0.0.1:${match[1] as string}`)
    })
    child.once('exit', (code) => { reject(new Error(`the Flask app exited (${String(code)}) before listening: ${output}`)) })
  })
}

async function startFastify (t: Test, keys: string[]): Promise<string> {
  const app: FastifyInstance = Fastify()
  // Plain HTTP on loopback, and no Max-Age surprises: the same attributes as the Flask side.
  await app.register(encryptedSession, { key: keys, cookie: { secure: false } })
  app.get('/counter', async (request) => {
    const visits = (request.session.get('visits') ?? 0) + 1
    request.session.set('visits', visits)
    return { visits }
  })
  app.post('/login', async (request) => {
    request.session.login({ name: (request.body as { name: string }).name })
    return request.session.user
  })
  app.post('/logout', async (request) => {
    request.session.logout()
    return {}
  })
  app.get('/whoami', async (request) => ({ user: request.session.user ?? null }))
  app.post('/flash', async (request) => {
    const { category, message } = request.body as { category: string, message: string }
    request.session.flash(category, message)
    return {}
  })
  app.get('/flashes', async (request) => ({ flashes: request.session.flashes().map(({ category, message }) => [category, message]) }))
  app.get('/session', async (request) => request.session.data())
  t.teardown(async () => { await app.close() })
  return await app.listen({ host: '127.0.0.1', port: 0 })
}

function client (jar: Jar) {
  return async (base: string, path: string, body?: object): Promise<unknown> => {
    const response = await fetch(base + path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { cookie: jar.header(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    if (response.status !== 200) throw new Error(`${base}${path}: ${response.status} ${await response.text()}`)
    jar.take(response)
    return await response.json()
  }
}

t.test('a Flask app and the plugin share one session', { skip }, async (t) => {
  const keys = [Fernet.generateKey()]
  const [flask, fastify] = await Promise.all([startFlask(t, keys), startFastify(t, keys)])
  const cases: string[] = []

  const jar = new Jar()
  const call = client(jar)
  await call(flask, '/login', { name: 'ada' })
  t.same(await call(fastify, '/whoami'), { user: { name: 'ada' } }, 'a login in Flask is session.user in Fastify')
  cases.push('Flask login -> Fastify session.user')

  const other = new Jar()
  const call2 = client(other)
  await call2(fastify, '/login', { name: 'grace' })
  t.same(await call2(flask, '/whoami'), { user: { name: 'grace' } }, 'a login in Fastify is current_user in Flask')
  cases.push('Fastify login -> Flask current_user')

  await call(fastify, '/flash', { category: 'info', message: 'from Fastify' })
  t.same(await call(flask, '/flashes'), { flashes: [['info', 'from Fastify']] }, 'flashed in Fastify, shown by Flask')
  t.same(await call(fastify, '/flashes'), { flashes: [] }, 'and read once')
  await call(flask, '/flash', { category: 'warning', message: 'from Flask' })
  t.same(await call(fastify, '/flashes'), { flashes: [['warning', 'from Flask']] }, 'flashed in Flask, shown by Fastify')
  t.same(await call(flask, '/flashes'), { flashes: [] }, 'and read once')
  cases.push('flash Fastify -> Flask, read once', 'flash Flask -> Fastify, read once')

  let last: unknown
  for (let i = 0; i < 20; i++) last = await call(i % 2 === 0 ? flask : fastify, '/counter')
  t.same(last, { visits: 20 }, 'a counter incremented 10 times on each side is exact')
  t.same(await call(flask, '/session'), { current_user: { name: 'ada' }, visits: 20 }, 'the whole session as Flask sees it')
  t.same(await call(fastify, '/session'), { current_user: { name: 'ada' }, visits: 20 }, 'and as Fastify sees it')
  cases.push('counter alternated 20 times')

  await call(fastify, '/logout', {})
  t.equal(jar.cookies.size, 0, 'logout in Fastify clears the cookie')
  t.same(await call(flask, '/whoami'), { user: null }, 'Flask sees nobody')
  cases.push('Fastify logout -> Flask sees nobody')
  t.comment(`Flask interop cases: ${cases.join('; ')}`)
})

t.test('rotation with the same key list on both sides', { skip }, async (t) => {
  const [oldKey, newKey] = [Fernet.generateKey(), Fernet.generateKey()]
  const before = await Promise.all([startFlask(t, [oldKey]), startFastify(t, [oldKey])])
  const after = await Promise.all([startFlask(t, [newKey, oldKey]), startFastify(t, [newKey, oldKey])])

  for (const [maker, base] of [['Flask', before[0]], ['Fastify', before[1]]] as const) {
    const jar = new Jar()
    const call = client(jar)
    // Login first: the plugin's login() keeps no anonymous key by default.
    await call(base, '/login', { name: maker })
    await call(base, '/counter')
    const oldToken = jar.cookies.get('session') as string
    await t.resolves(new Fernet(oldKey).decrypt(oldToken), `${maker}: made under the old key`)
    t.same(await call(after[0], '/whoami'), { user: { name: maker } }, `${maker}'s old-key cookie read by Flask with [new, old]`)
    t.same(await call(after[1], '/counter'), { visits: 2 }, `${maker}'s old-key cookie read by Fastify with [new, old]`)
    await t.resolves(new Fernet(newKey).decrypt(jar.cookies.get('session') as string), 're-issued under the new key')
    t.same(await call(after[0], '/counter'), { visits: 3 }, 'and Flask goes on with it')
  }
})
