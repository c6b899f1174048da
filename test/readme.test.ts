// The README's runnable blocks, run as a newcomer would paste them. A block is runnable when the
// line before its fence is `<!-- runnable: NAME -->` (invisible on GitHub); each NAME has a
// runner here, and every marked block must have run by the end. JavaScript runs against the
// PACKED package (npm pack, installed from the tarball into a new project, once per run), Python
// against Debian's python3 with Flask (skipped, visibly, where it is missing, unless
// REQUIRE_PYTHON_INTEROP=1).
import t, { type Test } from 'tap'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Fernet } from 'fastify-encrypted-session/fernet'
import { packTarball, packageVersion, root, run, startServer, userEnv, waitForOutput } from './helpers/packed.js'
import { PYTHON, pythonMissing, seedArchive, unpackSeedLibrary } from './helpers/python.js'

// tap's default is 30 s a file; npm install on a loaded machine can take that alone. A bound only.
t.setTimeout(180_000)

interface Block { name: string, lang: string, code: string, line: number }

/** The README's marked blocks, and what is wrong with the markers. */
function runnableBlocks (markdown: string): { blocks: Block[], problems: string[] } {
  const lines = markdown.split('\n')
  const blocks: Block[] = []
  const problems: string[] = []
  lines.forEach((line, index) => {
    if (!/<!--\s*runnable\b/.test(line)) return
    const marker = /^<!-- runnable: ([a-z0-9-]+) -->$/.exec(line)
    if (marker === null) {
      problems.push(`README.md:${index + 1}: a runnable marker must read <!-- runnable: name -->, alone on its line: ${line}`)
      return
    }
    const fence = /^(`{3,}|~{3,})([\w-]*)\s*$/.exec(lines[index + 1] ?? '')
    if (fence === null) {
      problems.push(`README.md:${index + 1}: the marker ${marker[1] as string} is not on the line before a code fence`)
      return
    }
    const [, ticks = '', lang = ''] = fence
    const end = lines.findIndex((candidate, at) => at > index + 1 && candidate.trim() === ticks)
    if (end === -1) {
      problems.push(`README.md:${index + 2}: the block ${marker[1] as string} is never closed`)
      return
    }
    blocks.push({ name: marker[1] as string, lang, code: lines.slice(index + 2, end).join('\n') + '\n', line: index + 2 })
  })
  return { blocks, problems }
}

// Every runner, by the block it runs and the language the block must be in.
const RUNNERS: Record<string, string> = {
  'quick-start-install': 'sh',
  'quick-start': 'js',
  'quick-start-run': 'sh',
  'quick-start-curl': 'sh',
  keys: 'sh',
  'flask-recipe': 'python',
  'flask-seed-safe': 'python'
}

const readme = readFileSync(join(root, 'README.md'), 'utf8')
const { blocks, problems } = runnableBlocks(readme)
const byName = new Map(blocks.map((block) => [block.name, block]))
/** What became of each block: run, or skipped and why. */
const outcome = new Map<string, string>()

function block (name: string): Block {
  const found = byName.get(name)
  if (found === undefined) throw new Error(`README.md has no block marked <!-- runnable: ${name} -->`)
  outcome.set(name, 'run')
  return found
}

t.test('the runnable markers', async (t) => {
  t.same(problems, [], 'every marker is well formed and followed by a code block')
  const names = blocks.map((b) => b.name)
  t.same(names.filter((name, i) => names.indexOf(name) !== i), [], 'no name is used twice')
  t.same(names.filter((name) => RUNNERS[name] === undefined), [], 'every marked block has a runner here')
  t.same(Object.keys(RUNNERS).filter((name) => !byName.has(name)), [], 'every runner has its block: removing a marker does not pass silently')
  t.ok(byName.has('quick-start') && byName.has('flask-recipe'), 'at least the quick start and the Flask recipe are marked')
  for (const b of blocks) {
    if (RUNNERS[b.name] !== undefined) t.equal(b.lang, RUNNERS[b.name], `${b.name} (README.md:${b.line}) is a ${RUNNERS[b.name] as string} block`)
  }
  t.same(runnableBlocks('<!-- runnable: a -->\ntext\n<!-- runnable b -->\n```sh\nx\n```\n').problems.length, 2, 'the check finds a stray and a malformed marker')
})

/** The README's section under a `## ` heading, up to the next one. */
function section (heading: string): string {
  const start = readme.indexOf(`\n## ${heading}\n`)
  if (start === -1) throw new Error(`README.md has no section ${heading}`)
  const end = readme.indexOf('\n## ', start + 1)
  return readme.slice(start, end === -1 ? undefined : end)
}

t.test('the quick start installs what it imports, and says what it needs', async (t) => {
  const quickStart = section('Quick start')
  const installed = new Set([...quickStart.matchAll(/^npm install ([^\n#]+)/gm)].flatMap((match) => (match[1] as string).trim().split(/\s+/)))
  const imported = [...quickStart.matchAll(/^import .* from '([^']+)'$/gm)].map((match) => match[1] as string)
  t.ok(imported.includes('redis'), 'the Redis snippet imports redis')
  for (const name of new Set(imported)) {
    const pkg = name.startsWith('@') ? name.split('/').slice(0, 2).join('/') : (name.split('/')[0] as string)
    t.ok(installed.has(pkg), `${name}: its package (${pkg}) has an npm install line in the quick start`)
  }
  t.match(quickStart, /Fastify 5/, 'the Fastify it needs')
  t.match(quickStart, /EBADENGINE/, 'the warning npm prints on Node 20, explained where it is first seen')
})

interface Cookie { name: string, value: string, attributes: string[] }

function cookies (response: Response): Cookie[] {
  return response.headers.getSetCookie().map((line) => {
    const [pair = '', ...attributes] = line.split(';').map((part) => part.trim())
    const at = pair.indexOf('=')
    return { name: pair.slice(0, at), value: pair.slice(at + 1), attributes }
  })
}

async function get (url: string, cookie?: string, method = 'GET'): Promise<{ status: number, body: unknown, cookies: Cookie[] }> {
  const response = await fetch(url, { method, headers: cookie === undefined ? {} : { cookie: `session=${cookie}` }, signal: AbortSignal.timeout(10_000) })
  return { status: response.status, body: await response.json(), cookies: cookies(response) }
}

/** The attributes of `expected` the cookie lacks (names and values case-insensitive). */
function lacking (cookie: Cookie | undefined, expected: string[]): string[] {
  const has = (cookie?.attributes ?? []).map((attribute) => attribute.toLowerCase())
  return expected.filter((attribute) => !has.includes(attribute.toLowerCase()))
}

const ATTRIBUTES = ['Max-Age=86400', 'Path=/', 'HttpOnly', 'Secure', 'SameSite=Lax']

function sessionCookie (t: Test, response: { cookies: Cookie[] }, what: string): string {
  const found = response.cookies.filter((cookie) => cookie.name === 'session')
  t.equal(found.length, 1, `${what}: one session cookie`)
  return found[0]?.value ?? ''
}

t.test('the README, pasted', async (t) => {
  // Where Python or curl is missing their blocks are skipped, visibly; REQUIRE_PYTHON_INTEROP=1
  // and REQUIRE_CURL=1 (both set by .ci/run) make that a failure instead.
  const noPython = pythonMissing(['cryptography'])
  const noFlask = pythonMissing(['cryptography', 'flask'])
  const noCurl = spawnSync('curl', ['--version']).error === undefined ? undefined : 'curl is not installed'
  if (noCurl !== undefined && process.env.REQUIRE_CURL === '1') throw new Error(`REQUIRE_CURL=1 but ${noCurl}`)
  const noSeed = noFlask ?? seedArchive().missing
  for (const [name, reason] of [['keys', noPython], ['flask-recipe', noFlask], ['flask-seed-safe', noSeed], ['quick-start-curl', noCurl]] as const) {
    if (reason !== undefined) outcome.set(name, `skipped: ${reason}`)
  }

  const work = mkdtempSync(join(tmpdir(), 'readme-'))
  t.teardown(() => { rmSync(work, { recursive: true, force: true }) })
  const project = join(work, 'project')
  mkdirSync(project)

  // A project as `npm init -y` makes it: npm 11 writes "type": "commonjs", where an import in a
  // .js file would fail, so this proves the quick start's .mjs too.
  const tarball = await packTarball(work)
  await run('npm', ['init', '-y'], { cwd: project, timeout: 60_000 })

  let key = ''
  await t.test('install and key', async (t) => {
    const install = block('quick-start-install')
    // The package is not fetched from the registry but from our tarball: `npm install`, and
    // only it, goes through this function; everything else runs as written.
    const shim = [
      'set -euo pipefail',
      'npm () {',
      '  if [ "$1" != install ]; then command npm "$@"; return; fi',
      '  local args=() arg',
      `  for arg in "\${@:2}"; do [ "$arg" = fastify-encrypted-session ] && arg=${JSON.stringify(join(work, tarball))}; args+=("$arg"); done`,
      '  command npm install --prefer-offline --no-audit --no-fund "${args[@]}"',
      '}'
    ].join('\n')
    const output = await run('bash', ['-c', `${shim}\n${install.code}\nprintf '%s' "$SESSION_KEY" > ../session-key`], { cwd: project, timeout: 120_000 })
    for (const warning of new Set(`${output.stdout}\n${output.stderr}`.match(/\bE[A-Z]{4,}\b/g) ?? [])) {
      t.match(section('Quick start'), warning, `npm printed ${warning}: the quick start explains it`)
    }
    const manifest = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as { type?: string, dependencies?: Record<string, string> }
    t.equal(manifest.type, 'commonjs', 'a CommonJS project, as npm init -y makes it')
    t.match(manifest.dependencies?.['fastify-encrypted-session'], /^file:.*\.tgz$/, 'the package came from the tarball')
    t.ok(manifest.dependencies?.fastify, 'and fastify from the registry')
    const installed = JSON.parse(readFileSync(join(project, 'node_modules', 'fastify-encrypted-session', 'package.json'), 'utf8')) as { version: string }
    t.equal(installed.version, packageVersion)
    key = readFileSync(join(work, 'session-key'), 'utf8')
    t.match(key, /^[A-Za-z0-9_-]{43}=$/, 'SESSION_KEY holds a key from the packed keygen')
    t.doesNotThrow(() => new Fernet(key), 'that Fernet takes')
  })

  await t.test('keys', { skip: noPython === undefined ? false : `the Keys block runs Python: ${noPython}` }, async (t) => {
    // `python3` in the block is the interop Python, which has cryptography.
    const bin = join(work, 'bin')
    mkdirSync(bin)
    symlinkSync(PYTHON, join(bin, 'python3'))
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', block('keys').code], { cwd: project, env: userEnv({ PATH: `${bin}:${process.env.PATH ?? ''}` }), timeout: 60_000 })
    const keys = stdout.trim().split('\n')
    t.equal(keys.length, 2, 'one key from each command')
    for (const made of keys) {
      t.match(made, /^[A-Za-z0-9_-]{43}=$/, '44 characters of url-safe base64')
      t.equal(Buffer.from(made, 'base64url').length, 32, 'of 32 bytes')
    }
    t.not(keys[0], keys[1], 'and each new')
  })

  let node = ''
  let fromNode = ''
  await t.test('quick start: server.mjs', async (t) => {
    // The block goes into the file the run command names: were that a .js file, this CommonJS
    // project would refuse its import, as it would a user's.
    const words = block('quick-start-run').code.trim().split(/\s+/)
    t.match(words, ['node', /^[\w-]+\.[cm]?js$/], 'the run command is node and a file')
    t.equal(words.length, 2, 'and nothing else')
    writeFileSync(join(project, words[1] as string), block('quick-start').code)
    // PORT=0: a free port, which the server logs.
    const server = startServer(t, words[0] as string, words.slice(1), { cwd: project, env: userEnv({ SESSION_KEY: key, PORT: '0' }) })
    const [, url = ''] = await waitForOutput(server, /"msg":"Server listening at (http:\/\/127\.0\.0\.1:\d+)"/, 30_000)
    node = url

    const first = await get(`${node}/`)
    t.same(first.body, { visits: 1 }, 'the first visit counts 1')
    const cookie = sessionCookie(t, first, 'the first visit')
    t.match(cookie, /^gAAAAA/, 'a Fernet token')
    t.same(lacking(first.cookies[0], ATTRIBUTES), [], `with the default attributes: ${first.cookies[0]?.attributes.join('; ') ?? ''}`)
    const second = await get(`${node}/`, cookie)
    t.same(second.body, { visits: 2 }, 'the same cookie again counts 2')
    fromNode = sessionCookie(t, second, 'the second visit')
    t.same(JSON.parse(new TextDecoder().decode(await new Fernet(key).decrypt(fromNode))), { visits: 2 }, 'the cookie holds the session under SESSION_KEY')

    await t.test('the curl lines', { skip: noCurl ?? false }, async (t) => {
      const commands = block('quick-start-curl').code.trim().split('\n')
      const port = new URL(node).port
      t.equal(commands.length, 2, 'two requests')
      for (const [i, command] of commands.entries()) {
        const [, shell = '', expected = ''] = /^(.*?)\s+#\s*(.*)$/.exec(command) ?? []
        t.match(shell, /localhost:3000\//, 'the port the server defaults to')
        // The one change: the free port this server is on instead of 3000.
        const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', shell.replace('localhost:3000/', `localhost:${port}/`)], { cwd: project, timeout: 30_000 })
        t.equal(stdout, expected, `curl ${i + 1} prints what its comment says`)
      }
    })

    await t.test('the Flask recipe', { skip: noFlask === undefined ? false : `the Flask recipe needs Flask: ${noFlask}` }, async (t) => {
      const recipe = join(work, 'readme_recipe.py')
      writeFileSync(recipe, block('flask-recipe').code)
      const server = startServer(t, PYTHON, ['-B', join(root, 'test', 'fixtures', 'readme', 'serve_recipe.py'), recipe], { cwd: work, env: userEnv({ SESSION_KEY: key }) })
      const [, port = ''] = await waitForOutput(server, /LISTENING (\d+)/, 30_000)
      const flask = `http://127.0.0.1:${port}`

      const read = await get(`${flask}/peek`, fromNode)
      t.same(read.body, { visits: 2 }, 'Flask reads the cookie the quick start made')
      t.same(read.cookies, [], 'and, the session unchanged, sends no Set-Cookie')
      const none = await get(`${flask}/peek`)
      t.same([none.body, none.cookies], [{}, []], 'no cookie: an empty session, and no Set-Cookie')
      const bad = await get(`${flask}/peek`, 'gAAAAAnot-a-token')
      t.same([bad.status, bad.body, bad.cookies], [200, {}, []], 'a bad cookie: an empty session, no error')

      const counted = await get(`${flask}/`, fromNode)
      t.same(counted.body, { visits: 3 }, 'the README\'s Flask counter goes on from the Node count')
      const fromFlask = sessionCookie(t, counted, 'Flask, after a change')
      t.same(lacking(counted.cookies[0], ATTRIBUTES), [], `with the plugin's attributes: ${counted.cookies[0]?.attributes.join('; ') ?? ''}`)
      t.same((await get(`${node}/`, fromFlask)).body, { visits: 4 }, 'the quick start reads the cookie Flask made')

      // Renewal, as the plugin's default rolling: a token older than ttl / 4 is re-issued even
      // unchanged, a younger one is not. Tokens dated in the past stand in for waiting.
      const now = Math.floor(Date.now() / 1000)
      const fernet = new Fernet(key)
      const due = await fernet.encryptAtTime('{"visits":7}', now - 86_400 / 4 - 600)
      const renewed = await get(`${flask}/peek`, due)
      t.same(renewed.body, { visits: 7 }, 'a token past a quarter of ttl is read')
      const fresh = sessionCookie(t, renewed, 'and renewed although unchanged')
      t.ok(await fernet.extractTimestamp(fresh) > await fernet.extractTimestamp(due), 'under a newer time')
      t.same((await get(`${node}/`, fresh)).body, { visits: 8 }, 'which the quick start reads')
      const young = await get(`${flask}/peek`, await fernet.encryptAtTime('{"visits":9}', now - 86_400 / 4 + 600))
      t.same([young.body, young.cookies], [{ visits: 9 }, []], 'a token younger than that is not renewed')

      const cleared = await get(`${flask}/clear`, fromNode, 'POST')
      t.equal(cleared.cookies.length, 1, 'emptying the session sends one Set-Cookie')
      t.match(cleared.cookies[0], { name: 'session', value: '' }, 'for the session cookie, emptied')
      t.ok(cleared.cookies[0]?.attributes.some((a) => /^max-age=0$/i.test(a) || /^expires=.*1970/i.test(a)), 'and expired')
    })

    await t.test('the safe interface for flask_encrypted_cookies_session', { skip: noSeed === undefined ? false : `it needs Flask and the library: ${noSeed}` }, async (t) => {
      const { pythonPath, remove } = unpackSeedLibrary(seedArchive().archive as string)
      t.teardown(remove)
      const recipe = join(work, 'readme_seed_safe.py')
      writeFileSync(recipe, block('flask-seed-safe').code)
      // Three keys, the quick start's first: the library alone would never use the third.
      const [second, third] = [Fernet.generateKey(), Fernet.generateKey()]
      const server = startServer(t, PYTHON, ['-B', join(root, 'test', 'fixtures', 'readme', 'serve_recipe.py'), recipe], { cwd: work, env: userEnv({ SESSION_KEY: [key, second, third].join(','), PYTHONPATH: pythonPath }) })
      const [, port = ''] = await waitForOutput(server, /LISTENING (\d+)/, 30_000)
      const flask = `http://127.0.0.1:${port}`
      const now = Math.floor(Date.now() / 1000)

      const read = await get(`${flask}/peek`, fromNode)
      t.same([read.body, read.cookies], [{ visits: 2 }, []], 'it reads the quick start\'s cookie, and leaves it')
      for (const [what, token] of [['garbage', 'gAAAAAnot-a-token'], ['not JSON', await new Fernet(key).encrypt('not json')], ['under an unknown key', await new Fernet(Fernet.generateKey()).encrypt('{"visits": 5}')]]) {
        const bad = await get(`${flask}/peek`, token)
        t.same([bad.status, bad.body], [200, {}], `${what}: a fresh session, not the library's 500`)
      }
      const old = await get(`${flask}/peek`, await new Fernet(key).encryptAtTime('{"visits": 5}', now - 86_400 - 120))
      t.same([old.status, old.body], [200, {}], 'older than ttl: a fresh session, as in the plugin')
      const underThird = await get(`${flask}/peek`, await new Fernet(third).encrypt('{"visits": 6}'))
      t.same(underThird.body, { visits: 6 }, 'the third key opens too')
      const counted = await get(`${flask}/`, fromNode)
      t.same(counted.body, { visits: 3 }, 'the counter goes on from the Node count')
      const fromFlask = sessionCookie(t, counted, 'after a change')
      t.ok(counted.cookies[0]?.attributes.some((a) => /^expires=/i.test(a)), 'with an expiry, as the plugin\'s cookie has')
      t.same((await get(`${node}/`, fromFlask)).body, { visits: 4 }, 'which the quick start reads')
      const due = await get(`${flask}/peek`, await new Fernet(third).encryptAtTime('{"visits": 7}', now - 86_400 / 4 - 600))
      const renewed = sessionCookie(t, due, 'a read session past a quarter of ttl, not permanent, is renewed')
      t.ok(await new Fernet(key).extractTimestamp(renewed) > now - 60, 'under the first key, with a new time')
      t.same((await get(`${node}/`, renewed)).body, { visits: 8 }, 'which the quick start reads')
      const young = await get(`${flask}/peek`, await new Fernet(key).encryptAtTime('{"visits": 9}', now - 600))
      t.same([young.body, young.cookies], [{ visits: 9 }, []], 'a younger one is left as it is')
    })
  })

  t.test('every marked block ran', async (t) => {
    const missed = blocks.map((b) => b.name).filter((name) => outcome.get(name) === undefined)
    t.same(missed, [], 'none was left out')
    for (const [name, what] of outcome) if (what !== 'run') t.comment(`README block ${name}: ${what}`)
  })
})
