// The built package, loaded by its own name as a user would: import and require, root and
// the ./fernet subpath. Runs against dist/, which `npm test` builds first.
import t from 'tap'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

t.test('import and require give the same API', async (t) => {
  const esm = await import('fastify-encrypted-session')
  const cjs = require('fastify-encrypted-session') as typeof esm
  for (const [name, mod] of [['import', esm], ['require', cjs]] as const) {
    t.equal(typeof mod.default, 'function', `${name}: default export is the plugin`)
    t.equal(mod.encryptedSession, mod.default, `${name}: named export`)
    t.equal((mod.default as unknown as { default: unknown }).default, mod.default, `${name}: .default`)
    for (const api of ['Fernet', 'MultiFernet', 'InvalidToken', 'deriveKey', 'Session']) {
      t.equal(typeof (mod as Record<string, unknown>)[api], 'function', `${name}: ${api}`)
    }
  }
  t.same(Object.keys(cjs).sort(), Object.keys(esm).filter((k) => k !== 'module.exports').sort(), 'the same names from both')

  const token = await new esm.Fernet(esm.Fernet.generateKey()).encrypt('x')
  t.ok(token)
  const error = await new cjs.Fernet(cjs.Fernet.generateKey()).decrypt(token).catch((e: unknown) => e)
  t.ok(error instanceof esm.InvalidToken, 'an InvalidToken from the CommonJS copy is instanceof the ESM class')

  const key = esm.Fernet.generateKey()
  const mixed = new esm.MultiFernet([new cjs.Fernet(key)])
  t.equal(new TextDecoder().decode(await mixed.decrypt(await new cjs.Fernet(key).encrypt('mixed'))), 'mixed', 'a CommonJS Fernet inside an ESM MultiFernet')
  t.ok(new cjs.Session() instanceof esm.Session, 'a Session is recognised across the copies')

  const subpath = await import('fastify-encrypted-session/fernet')
  const subpathCjs = require('fastify-encrypted-session/fernet') as typeof subpath
  t.equal(typeof subpath.Fernet, 'function')
  t.equal(typeof subpathCjs.MultiFernet, 'function')
  t.equal(typeof subpath.deriveKey, 'function')
})

t.test('the ./fernet subpath exports the documented API and nothing else', async (t) => {
  const documented = ['DEFAULT_MAX_TOKEN_LENGTH', 'Fernet', 'FernetBase', 'InvalidToken', 'MAX_CLOCK_SKEW', 'MultiFernet', 'deriveKey']
  const esm = await import('fastify-encrypted-session/fernet')
  const cjs = require('fastify-encrypted-session/fernet') as typeof esm
  t.same(Object.keys(esm).filter((name) => name !== 'module.exports').sort(), documented, 'import')
  t.same(Object.keys(cjs).sort(), documented, 'require')
  for (const internal of ['openToken', 'verifyToken', 'encryptFromParts', 'nowSeconds', 'ageProblem', 'keyBytes', 'tokenTextLength']) {
    t.notOk(internal in esm || internal in cjs, `${internal} is not exported`)
  }
  const root = await import('fastify-encrypted-session')
  for (const name of documented) t.equal((root as Record<string, unknown>)[name], (esm as Record<string, unknown>)[name], `${name} is the root's`)
})

t.test('Fastify 5 is a peer dependency: the app\'s own Fastify is used', async (t) => {
  const { readFileSync } = await import('node:fs')
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as Record<string, Record<string, string> | undefined>
  t.equal(manifest.peerDependencies?.fastify, '^5.0.0', 'peerDependencies: fastify ^5')
  t.notOk(manifest.dependencies?.fastify, 'and not a dependency, which would install a second Fastify')
  t.match((require('fastify/package.json') as { version: string }).version, /^5\./, 'the Fastify the tests run is a 5')
  const { default: Fastify } = await import('fastify')
  const app = Fastify()
  // What a Fastify outside ^5 meets: fastify-plugin's check, with the same range.
  Object.defineProperty(app, 'version', { value: '4.29.0' })
  const { default: encryptedSession } = await import('fastify-encrypted-session')
  await t.rejects(async () => { await app.register(encryptedSession, { key: (await import('fastify-encrypted-session/fernet')).Fernet.generateKey() }).ready() }, /expected '5\.x' fastify version/, 'registering on Fastify 4 fails at once, naming the version')
})

t.test('the ./fernet subpath loads nothing of Fastify', async (t) => {
  const { execFileSync } = await import('node:child_process')
  // A clean environment: tap's own loader hooks would otherwise show up in the cache.
  const run = (code: string): string => execFileSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { PATH: process.env.PATH } })
  const script = "import('fastify-encrypted-session/fernet').then(() => { const loaded = Object.keys(require.cache).filter((f) => /fastify/.test(f.replace(process.cwd(), ''))); console.log(JSON.stringify(loaded)) })"
  const output = run(script)
  t.same(JSON.parse(output), [], 'no Fastify module in the require cache')
  // tap re-injects its coverage hooks into child processes, so look for our dependencies only.
  const cjsScript = "require('fastify-encrypted-session/fernet'); console.log(JSON.stringify(Object.keys(require.cache).filter((f) => /node_modules[\\\\/](fastify|@fastify|fastify-plugin|secure-json-parse)[\\\\/]/.test(f))))"
  t.same(JSON.parse(run(cjsScript)), [], 'require: none of our dependencies loaded')
})

t.test('the package root loads no Redis client; RedisStore comes from ./redis and takes the app\'s', async (t) => {
  const { execFileSync } = await import('node:child_process')
  const run = (code: string): string => execFileSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { PATH: process.env.PATH } })
  // node-redis is installed here (a dev dependency), so an import of it anywhere in the root's
  // graph would show in the cache.
  const loadedRedis = "Object.keys(require.cache).filter((f) => /node_modules[\\\\/](redis|@redis|ioredis)[\\\\/]/.test(f))"
  t.same(JSON.parse(run(`import('fastify-encrypted-session').then(() => console.log(JSON.stringify(${loadedRedis})))`)), [], 'import: nothing of Redis')
  t.same(JSON.parse(run(`require('fastify-encrypted-session'); console.log(JSON.stringify(${loadedRedis}))`)), [], 'require: nothing of Redis')
  t.same(JSON.parse(run(`const { RedisStore } = require('fastify-encrypted-session/redis'); console.log(JSON.stringify([typeof RedisStore, ${loadedRedis}]))`)), ['function', []], 'the subpath neither: the app passes its own client')
  t.not(JSON.parse(run(`require('redis'); console.log(JSON.stringify(${loadedRedis}))`)).length, 0, 'the check does see node-redis once something loads it')
})
