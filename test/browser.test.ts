// A real browser: Debian's Chromium driven by playwright-core (which downloads nothing) against
// the demo app on 127.0.0.1, in a fresh user-data dir. The counter survives page loads, the
// session cookie is out of reach of page scripts (HttpOnly), log in and log out work with their
// flash messages and the page behind requireLogin, the cookie page agrees with what the browser
// holds (one cookie, or chunks once the session is large), a cookie edited in the browser gives
// a fresh session, and the Fernet core itself (dist/esm/lib, served
// as ES modules) runs on the browser's WebCrypto: it opens tokens made in Node, Node opens
// tokens made there, and the spec's vectors pass in the page.
// Skipped with the reason where Chromium is missing; REQUIRE_CHROMIUM=1 makes that a failure.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { chromium, type BrowserContext, type Cookie } from 'playwright-core'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
// @ts-expect-error the demo is plain JavaScript, written as an application would be
import { buildDemo } from '../demo/app.js'
import { Fernet, MultiFernet, deriveKey } from '../index.js'
import { CHROMIUM, CHROMIUM_ARGS, chromiumMissing } from './helpers/chromium.js'
import { invalidCases, unixSeconds, verifyCases } from './helpers/vectors.js'

const skip = chromiumMissing()
if (skip !== undefined) t.comment(`browser tests skipped: ${skip}`)
t.setTimeout(120_000)

const KEY = Fernet.generateKey()
const LIB = join(import.meta.dirname, '..', 'dist', 'esm', 'lib', 'fernet')

function origin (app: FastifyInstance): string {
  const address = app.server.address()
  if (typeof address !== 'object' || address === null) throw new Error('not listening')
  return `http://127.0.0.1:${address.port}`
}

let context: BrowserContext
let demo: FastifyInstance
let modules: FastifyInstance
let userDataDir: string
const served: string[] = []

t.before(async () => {
  if (skip !== undefined) return
  demo = await buildDemo({ key: KEY, logger: false }) as FastifyInstance
  await demo.listen({ host: '127.0.0.1', port: 0 })
  // A second server, for the test only: a blank page and the built Fernet core as ES modules.
  modules = Fastify()
  modules.get('/', async (request, reply) => reply.type('text/html; charset=utf-8').send('<!doctype html><title>Fernet in the browser</title>'))
  modules.get<{ Params: { file: string } }>('/lib/:file', async (request, reply) => {
    const { file } = request.params
    const path = join(LIB, file)
    if (!/^[a-z0-9-]+\.js$/.test(file) || !existsSync(path)) return await reply.code(404).send()
    served.push(file)
    return await reply.type('text/javascript; charset=utf-8').send(readFileSync(path, 'utf8'))
  })
  await modules.listen({ host: '127.0.0.1', port: 0 })
  userDataDir = mkdtempSync(join(tmpdir(), 'fastify-encrypted-session-chromium-'))
  context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })
})

t.teardown(async () => {
  await context?.close()
  await demo?.close()
  await modules?.close()
  if (userDataDir !== undefined) rmSync(userDataDir, { recursive: true, force: true })
})

async function sessionCookie (): Promise<Cookie | undefined> {
  return (await context.cookies()).find((cookie) => cookie.name === 'session')
}

async function plaintextOf (token: string): Promise<unknown> {
  return JSON.parse(new TextDecoder().decode(await new Fernet(KEY).decrypt(token)))
}

t.test('the demo in Chromium', { skip }, async (t) => {
  const base = origin(demo)
  const page = await context.newPage()
  t.teardown(() => page.close())

  await t.test('the counter survives page loads', async (t) => {
    await page.goto(`${base}/`)
    t.equal(await page.textContent('#visits'), '1', 'first load')
    await page.reload()
    t.equal(await page.textContent('#visits'), '2', 'reload')
    await page.goto(`${base}/`)
    t.equal(await page.textContent('#visits'), '3', 'navigate again')
    const tab = await context.newPage()
    await tab.goto(`${base}/`)
    t.equal(await tab.textContent('#visits'), '4', 'a second tab shares the session')
    await tab.close()
    const cookie = await sessionCookie()
    t.match(cookie?.value, /^gAAAAA[A-Za-z0-9_-]+=*$/, 'the browser holds a raw Fernet token')
    t.same(await plaintextOf(cookie?.value as string), { visits: 4 }, 'which Node decrypts to the count')
  })

  await t.test('document.cookie cannot read or overwrite the session (HttpOnly)', async (t) => {
    const cookie = await sessionCookie()
    t.equal(cookie?.httpOnly, true, 'the cookie is HttpOnly')
    t.equal(cookie?.sameSite, 'Lax', 'SameSite=Lax')
    t.equal(cookie?.path, '/', 'Path=/')
    const seen = await page.evaluate(() => {
      document.cookie = 'probe=visible; path=/'
      document.cookie = 'session=forged-by-script; path=/'
      return document.cookie
    })
    t.match(seen, /(^|; )probe=visible/, 'page scripts do see an ordinary cookie')
    t.notMatch(seen, /session=/, 'but not the session cookie')
    t.equal((await sessionCookie())?.value, cookie?.value, 'and cannot overwrite it')
    await page.reload()
    t.equal(await page.textContent('#visits'), '5', 'the session goes on')
  })

  await t.test('log in, a page behind requireLogin, flash messages, log out', async (t) => {
    t.equal(await page.locator('#user').count(), 0, 'nobody is logged in')
    await page.fill('input[name="name"]', 'Ada <b>')
    await page.click('button:has-text("Log in")')
    await page.waitForSelector('#user')
    t.equal(await page.textContent('#user'), 'Logged in as Ada <b>', 'logged in, the name shown as text')
    t.equal(await page.locator('#user b').count(), 0, 'not as markup')
    t.equal(await page.textContent('#flashes'), 'Welcome, Ada <b>: you are logged in.', 'a flash message says so')
    t.equal(await page.textContent('#visits'), '6', 'the counter goes on (keepOnLogin)')
    t.same(await plaintextOf((await sessionCookie())?.value as string), { visits: 6, current_user: { name: 'Ada <b>' } }, 'the session holds the user, the message taken')
    await page.reload()
    t.equal(await page.locator('#flashes').count(), 0, 'the message is shown once')
    t.equal(await page.textContent('#visits'), '7', 'the counter goes on')

    await page.click('nav a[href="/account"]')
    await page.waitForSelector('#account')
    t.equal(await page.textContent('#account'), 'You are logged in as Ada <b>.', 'the page behind requireLogin opens')
    await page.click('button:has-text("Log out")')
    await page.waitForSelector('input[name="name"]')
    t.equal(new URL(page.url()).pathname, '/', 'back on the home page')
    t.equal(await page.textContent('#flashes'), 'You are logged out, and the session was emptied.', 'a flash message says so')
    t.equal(await page.locator('#user').count(), 0, 'logged out')
    t.equal(await page.textContent('#visits'), '1', 'logout() emptied the session: the counter starts again')
    t.same(await plaintextOf((await sessionCookie())?.value as string), { visits: 1 }, 'the user is gone from the session')

    await page.goto(`${base}/account`)
    t.equal(new URL(page.url()).pathname, '/', 'logged out, the account page redirects home')
    t.equal(await page.textContent('#flashes'), 'Log in to see your account.', 'and says why')
    t.equal(await page.textContent('#visits'), '2', 'the redirect counted as one visit')
  })

  await t.test('the cookie page shows what the browser holds, one cookie or several', async (t) => {
    /** The session's cookies in the browser, chunks in order, and the token they make. */
    const held = async (): Promise<{ names: string[], token: string }> => {
      const cookies = (await context.cookies()).filter((cookie) => /^session(\.\d+)?$/.test(cookie.name))
      cookies.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }))
      return { names: cookies.map((cookie) => cookie.name), token: cookies.map((cookie) => cookie.value).join('') }
    }
    const agrees = async (t: Test, what: string): Promise<void> => {
      const { names, token } = await held()
      t.equal(await page.textContent('#cookie-count'), String(names.length), `${what}: the cookie count, ${names.join(', ')}`)
      t.equal(await page.textContent('#cookie-size'), String(token.length), `${what}: the size, ${token.length} bytes`)
      const expires = await new MultiFernet([KEY]).extractTimestamp(token) + 86_400
      t.equal(await page.textContent('#cookie-expires'), new Date(expires * 1000).toISOString(), `${what}: the expiry, timestamp + ttl`)
      t.same(JSON.parse(await page.textContent('#session-json') as string), await plaintextOf(token), `${what}: the session's JSON`)
    }

    await page.goto(`${base}/cookie`)
    t.same((await held()).names, ['session'], 'a small session is one plain cookie')
    await agrees(t, 'one cookie')
    for (let clicks = 0; (await held()).names.length === 1 && clicks < 12; clicks++) {
      await Promise.all([page.waitForNavigation(), page.click('button:has-text("Add")')])
    }
    const large = await held()
    t.ok(large.names.length > 1 && !large.names.includes('session'), `a large one is split: ${large.names.join(', ')}`)
    await agrees(t, 'chunks')
    await Promise.all([page.waitForNavigation(), page.click('button:has-text("Remove the padding")')])
    t.same((await held()).names, ['session'], 'small again: one plain cookie, the chunks cleared in the browser')
    await agrees(t, 'small again')
    await page.goto(`${base}/`)
    t.equal(await page.textContent('#visits'), '3', 'the cookie page does not count as a visit')
  })

  await t.test('a cookie edited in the browser gives a fresh session', async (t) => {
    await page.fill('input[name="name"]', 'Grace')
    await page.click('button:has-text("Log in")')
    await page.waitForSelector('#user')
    t.equal(await page.textContent('#visits'), '4', 'logged in again')
    const cookie = await sessionCookie() as Cookie
    const middle = Math.floor(cookie.value.length / 2)
    const edited = cookie.value.slice(0, middle) + (cookie.value[middle] === 'A' ? 'B' : 'A') + cookie.value.slice(middle + 1)
    await context.addCookies([{ ...cookie, value: edited }])
    t.equal((await sessionCookie())?.value, edited, 'the browser now holds the edited cookie')
    const response = await page.reload()
    t.match((await response?.request().allHeaders())?.cookie, `session=${edited}`, 'and sent it')
    t.equal(await page.textContent('#visits'), '1', 'a fresh session: the counter starts again')
    t.equal(await page.locator('#user').count(), 0, 'and nobody is logged in')
    const fresh = await sessionCookie()
    t.not(fresh?.value, edited, 'the edited cookie was replaced')
    t.same(await plaintextOf(fresh?.value as string), { visits: 1 }, 'by a new session')
  })
})

t.test('the Fernet core runs on the browser\'s WebCrypto', { skip }, async (t) => {
  t.ok(existsSync(join(LIB, 'public.js')), 'dist/esm/lib/fernet/public.js, the ./fernet entry, is built (npm test builds it)')
  const page = await context.newPage()
  t.teardown(() => page.close())
  await page.goto(`${origin(modules)}/`)
  const node = new Fernet(KEY)
  const rotateTo = Fernet.generateKey()
  const fromNode = await node.encrypt('made in Node: ünïcödé ✓')
  const demoCookie = (await sessionCookie())?.value as string
  const args = {
    key: KEY,
    rotateTo,
    token: fromNode,
    demoCookie,
    verify: verifyCases.map((c) => ({ token: c.token, secret: c.secret, now: unixSeconds(c.now), ttl: c.ttl_sec ?? 0, src: c.src ?? '' })),
    invalid: invalidCases.map((c) => ({ token: c.token, secret: c.secret, now: unixSeconds(c.now), ttl: c.ttl_sec ?? 0, desc: c.desc ?? '' }))
  }
  const result = await page.evaluate(async (args) => {
    const url = '/lib/public.js'
    const { Fernet, MultiFernet, InvalidToken, deriveKey } = await import(url)
    const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes)
    const fernet = new Fernet(args.key)
    const refused = async (promise: Promise<unknown>): Promise<string> => {
      try {
        await promise
        return 'accepted'
      } catch (error) {
        return error instanceof InvalidToken ? 'InvalidToken' : `other error: ${String(error)}`
      }
    }
    const flipped = args.token.slice(0, 40) + (args.token[40] === 'A' ? 'B' : 'A') + args.token.slice(41)
    const big = new Fernet(args.key, { maxTokenLength: 200_000 })
    const verified: string[] = []
    for (const c of args.verify) verified.push(text(await new Fernet(c.secret).decryptAtTime(c.token, c.ttl, c.now)))
    const invalid: string[] = []
    for (const c of args.invalid) invalid.push(await refused(new Fernet(c.secret).decryptAtTime(c.token, c.ttl, c.now)))
    return {
      secureContext: globalThis.isSecureContext,
      noBuffer: typeof (globalThis as { Buffer?: unknown }).Buffer === 'undefined',
      userAgent: navigator.userAgent,
      fromNode: text(await fernet.decrypt(args.token)),
      demoSession: text(await fernet.decrypt(args.demoCookie, { ttl: 86_400 })),
      tampered: await refused(fernet.decrypt(flipped)),
      wrongKey: await refused(new Fernet(Fernet.generateKey()).decrypt(args.token)),
      fromBrowser: await fernet.encrypt('made in the browser: ünïcödé ✓'),
      bigFromBrowser: await big.encrypt(new Uint8Array(100_000).fill(7)),
      rotated: await new MultiFernet([args.rotateTo, args.key]).rotate(args.token),
      derived: await deriveKey('correct horse battery staple, twice over', 'a salt of 16 bytes or more', { iterations: 1000 }),
      generated: Fernet.generateKey(),
      verified,
      invalid
    }
  }, args)
  t.equal(result.secureContext, true, 'http://127.0.0.1 is a secure context: WebCrypto is there')
  t.equal(result.noBuffer, true, 'no Buffer in the page: the atob/btoa base64 path ran')
  t.match(result.userAgent, /Chrome\//, `the browser: ${result.userAgent}`)
  t.equal(result.fromNode, 'made in Node: ünïcödé ✓', 'a token made in Node decrypts in the browser')
  t.same(JSON.parse(result.demoSession), { visits: 1 }, 'so does the demo\'s real session cookie')
  t.equal(result.tampered, 'InvalidToken', 'a tampered token is refused in the browser')
  t.equal(result.wrongKey, 'InvalidToken', 'so is a token under another key')
  t.equal(new TextDecoder().decode(await node.decrypt(result.fromBrowser)), 'made in the browser: ünïcödé ✓', 'a token made in the browser decrypts in Node')
  const big = await new Fernet(KEY, { maxTokenLength: 200_000 }).decrypt(result.bigFromBrowser)
  t.ok(big.length === 100_000 && big.every((byte) => byte === 7), 'a 100 KB token made in the browser (btoa in slices) decrypts in Node')
  t.equal(new TextDecoder().decode(await new Fernet(rotateTo).decrypt(result.rotated)), 'made in Node: ünïcödé ✓', 'MultiFernet.rotate in the browser, read in Node under the new key')
  t.equal(result.derived, await deriveKey('correct horse battery staple, twice over', 'a salt of 16 bytes or more', { iterations: 1000 }), 'deriveKey gives the same key in the browser and in Node')
  t.doesNotThrow(() => new Fernet(result.generated), 'a key generated in the browser works in Node')
  t.same(result.verified, verifyCases.map((c) => c.src), `the spec's ${verifyCases.length} verify vectors pass in the browser`)
  t.same(result.invalid, invalidCases.map(() => 'InvalidToken'), `the spec's ${invalidCases.length} invalid vectors are refused in the browser`)
  t.ok(served.includes('fernet.js') && served.includes('base64.js') && served.includes('derive-key.js'), `the page loaded the modules: ${[...new Set(served)].join(', ')}`)
})
