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
