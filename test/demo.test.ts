// The demo app (demo/app.js, what `npm start` serves), driven through inject().
import t from 'tap'
// @ts-expect-error the demo is plain JavaScript, written as an application would be
import { buildDemo } from '../demo/app.js'
import { Fernet } from '../index.js'
import type { FastifyInstance } from 'fastify'

const KEY = Fernet.generateKey()

function cookieFrom (response: { cookies: Array<{ name: string, value: string }> }): string {
  return response.cookies.find((c) => c.name === 'session')?.value as string
}

t.test('visit counter, log in, log out', async (t) => {
  const app = await buildDemo({ key: KEY }) as FastifyInstance
  const first = await app.inject('/')
  t.equal(first.statusCode, 200)
  t.match(first.body, /visited this page <strong id="visits">1<\/strong> time\./)
  let cookie = cookieFrom(first)
  const second = await app.inject({ url: '/', cookies: { session: cookie } })
  t.match(second.body, /<strong id="visits">2<\/strong> times/)
  cookie = cookieFrom(second)

  const login = await app.inject({ method: 'POST', url: '/login', payload: 'name=%3Cb%3EAda', headers: { 'content-type': 'application/x-www-form-urlencoded' }, cookies: { session: cookie } })
  t.equal(login.statusCode, 303)
  cookie = cookieFrom(login)
  const home = await app.inject({ url: '/', cookies: { session: cookie } })
  t.match(home.body, /Logged in as <strong>&#60;b&#62;Ada<\/strong>/, 'the name, escaped')
  cookie = cookieFrom(home)
  t.same((await app.inject({ url: '/api/session', cookies: { session: cookie } })).json(), { visits: 3, user: { name: '<b>Ada' } })

  const logout = await app.inject({ method: 'POST', url: '/logout', cookies: { session: cookie } })
  t.equal(logout.statusCode, 303)
  t.same((await app.inject({ url: '/api/session', cookies: { session: cookieFrom(logout) } })).json(), { visits: 3, user: null }, 'logged out, the counter stays')

  const empty = await app.inject({ method: 'POST', url: '/login', payload: 'name=++', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  t.equal(empty.statusCode, 400)
  const tampered = await app.inject({ url: '/api/session', cookies: { session: cookie.slice(0, -6) + 'AAAA==' } })
  t.same(tampered.json(), { visits: 0, user: null }, 'an edited cookie: a fresh session')
})

t.test('without a key: generates one and warns once', async (t) => {
  const warnings: string[] = []
  const saved = process.env.SESSION_KEY
  delete process.env.SESSION_KEY
  t.teardown(() => { if (saved !== undefined) process.env.SESSION_KEY = saved })
  const app = await buildDemo({ warn: (message: string) => warnings.push(message) }) as FastifyInstance
  t.equal(warnings.length, 1)
  t.match(warnings[0], /sessions will not survive a restart/)
  t.equal((await app.inject('/')).statusCode, 200)
  await buildDemo({ key: KEY, warn: (message: string) => warnings.push(message) })
  t.equal(warnings.length, 1, 'no warning with a key')
})
