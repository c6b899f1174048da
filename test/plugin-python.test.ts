// Cookies exchanged with real Python: what Python's Fernet mints, the plugin reads; the cookie
// the plugin sets, Python decrypts to the same JSON.
import t from 'tap'
import { Fernet } from '../index.js'
import { buildApp, setCookie } from './helpers/app.js'
import { pythonMissing, runFernetTool } from './helpers/python.js'

const skip = pythonMissing()
const b64 = (text: string): string => Buffer.from(text).toString('base64')

interface Answer { token?: string, data?: string, error?: string }

t.test('cookies cross between the plugin and Python', { skip }, async (t) => {
  const key = Fernet.generateKey()
  const oldKey = Fernet.generateKey()
  const { app } = await buildApp({ key: [key, oldKey] }, (app) => {
    app.get('/', async (request) => {
      const visits = (request.session.get('visits') ?? 0) + 1
      request.session.set('visits', visits)
      return request.session.data()
    })
  })
  // Python's json.dumps puts spaces after separators; the plugin reads any JSON object.
  const pythonJson = '{"visits": 41, "user": {"name": "Ad\\u00e1", "roles": ["admin"]}, "_flashes": [["info", "hi"]]}'
  const [minted, mintedOld] = runFernetTool<Answer>([
    { op: 'encrypt', keys: [key], data: b64(pythonJson) },
    { op: 'encrypt', keys: [oldKey], data: b64('{"visits": 1}') }
  ])
  const response = await app.inject({ url: '/', cookies: { session: minted?.token as string } })
  const expected = { visits: 42, user: { name: 'Adá', roles: ['admin'] }, _flashes: [['info', 'hi']] }
  t.same(response.json(), expected, 'a token Python minted is the session')

  const cookie = setCookie(response)?.value as string
  const [decrypted, withOldOnly] = runFernetTool<Answer>([
    { op: 'decrypt', keys: [key], token: cookie, ttl: 86400 },
    { op: 'decrypt', keys: [oldKey], token: cookie }
  ])
  const json = Buffer.from(decrypted?.data as string, 'base64').toString('utf8')
  t.same(JSON.parse(json), expected, 'the cookie the plugin set decrypts in Python to the same JSON')
  t.equal(json, JSON.stringify(expected), 'and is exactly JSON.stringify of the session: no envelope, no hidden keys')
  t.equal(withOldOnly?.error, 'InvalidToken', 'written under the first key')

  const rotated = await app.inject({ url: '/', cookies: { session: mintedOld?.token as string } })
  t.same(rotated.json(), { visits: 2 }, 'a Python token under the old key is read')
  const [reissued] = runFernetTool<Answer>([{ op: 'decrypt', keys: [key], token: setCookie(rotated)?.value as string }])
  t.equal(Buffer.from(reissued?.data as string, 'base64').toString('utf8'), '{"visits":2}', 're-issued under the new key, readable by Python')
})

t.test('a Python logout (current_user = None) is nobody here too', { skip }, async (t) => {
  const key = Fernet.generateKey()
  const { app } = await buildApp({ key }, (app) => {
    app.get('/me', { preHandler: app.requireLogin }, async (request) => ({ user: request.session.user }))
  })
  const [loggedOut, loggedIn] = runFernetTool<Answer>([
    { op: 'encrypt', keys: [key], data: b64('{"current_user": null, "cart": [1, 2]}') },
    { op: 'encrypt', keys: [key], data: b64('{"current_user": {"id": 7}}') }
  ])
  t.equal((await app.inject({ url: '/me', cookies: { session: loggedOut?.token as string } })).statusCode, 401, 'None is nobody, as sanic-cookies reads it')
  t.same((await app.inject({ url: '/me', cookies: { session: loggedIn?.token as string } })).json(), { user: { id: 7 } })
})

t.test('a second registration\'s key is what Python\'s HKDF derives, so Python can share it too', { skip }, async (t) => {
  const key = Fernet.generateKey()
  const { app } = await buildApp({ key, sessionName: 'staff' }, (app) => {
    app.get('/', async (request) => {
      const staff = (request as unknown as { staff: typeof request.session }).staff
      staff.set('seen', (staff.get('seen') ?? 0) + 1)
      return staff.data()
    })
  })
  const [derived] = runFernetTool<{ key: string }>([{ op: 'hkdf', keys: [key], info: 'fastify-encrypted-session/1 session staff' }])
  const cookie = setCookie(await app.inject('/'), 'staff')?.value as string
  const [decrypted, underKey] = runFernetTool<Answer>([
    { op: 'decrypt', keys: [derived?.key as string], token: cookie },
    { op: 'decrypt', keys: [key], token: cookie }
  ])
  t.equal(Buffer.from(decrypted?.data as string, 'base64').toString('utf8'), '{"seen":1}', 'Python opens the staff cookie with HKDF(SHA256, info "fastify-encrypted-session/1 session staff") of the key')
  t.equal(underKey?.error, 'InvalidToken', 'and not with the key itself')
  const [minted] = runFernetTool<Answer>([{ op: 'encrypt', keys: [derived?.key as string], data: b64('{"seen": 41}') }])
  t.same((await app.inject({ url: '/', cookies: { staff: minted?.token as string } })).json(), { seen: 42 }, 'a token Python made under the derived key opens')
})
