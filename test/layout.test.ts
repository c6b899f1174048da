// The layout's rules, checked on the imports of every file under lib/: the token format stays
// on WebCrypto alone, the stores know nothing of the backends, no backend imports Fastify. Each
// folder's main file states its rule in its opening comment; this is where a broken one shows.
import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import ts from 'typescript'

const root = join(import.meta.dirname, '..')

/** Every module a source names: static and type imports, re-exports, dynamic import() and require(). */
function importsOf (source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((file) => file.fileName)
}

interface Rule {
  folder: string
  /** Why an import is refused, or undefined when it is allowed; `target` is lib/-relative for relative imports. */
  refuse: (specifier: string, target: string | undefined) => string | undefined
}

const isFastify = (specifier: string): boolean => specifier === 'fastify' || specifier === 'fastify-plugin' || specifier.startsWith('@fastify/')

const rules: Rule[] = [
  {
    folder: 'fernet',
    refuse: (specifier, target) => {
      if (target === undefined) return 'a package or a platform module (only WebCrypto, through globalThis)'
      if (!target.startsWith('fernet/')) return 'another part of lib/'
      return undefined
    }
  },
  {
    folder: 'stores',
    refuse: (specifier, target) => {
      if (target?.startsWith('backends/') === true) return 'the backends'
      if (isFastify(specifier)) return 'Fastify'
      return undefined
    }
  },
  {
    folder: 'backends',
    refuse: (specifier) => isFastify(specifier) ? 'Fastify' : undefined
  },
  {
    folder: 'cookies',
    refuse: (specifier, target) => target?.startsWith('backends/') === true || target?.startsWith('stores/') === true ? 'the backends or the stores' : undefined
  }
]

/** The refused imports of one file of lib/ (its path relative to lib/), as "specifier: why". */
function violations (file: string, source: string): string[] {
  const rule = rules.find((r) => file.startsWith(`${r.folder}/`))
  if (rule === undefined) return []
  const found: string[] = []
  for (const specifier of importsOf(source)) {
    const target = specifier.startsWith('.') ? relative('lib', join('lib', dirname(file), specifier)) : undefined
    const why = rule.refuse(specifier, target)
    if (why !== undefined) found.push(`${specifier}: ${why}`)
  }
  return found
}

const libFiles = readdirSync(join(root, 'lib'), { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.ts'))

t.test('the checker sees what it must refuse', async (t) => {
  t.same(violations('fernet/x.ts', "import { randomBytes } from 'node:crypto'"), ['node:crypto: a package or a platform module (only WebCrypto, through globalThis)'])
  t.same(violations('fernet/x.ts', "export { a } from '../session.js'"), ['../session.js: another part of lib/'])
  t.same(violations('fernet/x.ts', "const f = await import('fastify')"), ['fastify: a package or a platform module (only WebCrypto, through globalThis)'])
  t.same(violations('fernet/x.ts', "import { bytesOf } from './bytes.js'"), [], 'its own folder is allowed')
  t.same(violations('stores/x.ts', "import type { SessionBackend } from '../backends/backend.js'"), ['../backends/backend.js: the backends'], 'a type-only import counts')
  t.same(violations('backends/x.ts', "import type { FastifyReply } from 'fastify'"), ['fastify: Fastify'])
  t.same(violations('backends/x.ts', "import { x } from '@fastify/cookie'"), ['@fastify/cookie: Fastify'])
  t.same(violations('cookies/x.ts', "import { MemoryStore } from '../stores/memory.js'"), ['../stores/memory.js: the backends or the stores'])
  t.same(violations('options.ts', "import fastify from 'fastify'"), [], 'the top of lib/ has no folder rule')
})

t.test('the folders hold the files the layout names', async (t) => {
  t.same(libFiles.map((file) => file.split('\\').join('/')).sort(), [
    'backends/backend.ts', 'backends/cookie.ts', 'backends/link.ts', 'backends/python-json.ts', 'backends/revocation.ts', 'backends/store.ts',
    'cli.ts',
    'cookies/cookie-chunks.ts', 'cookies/cookie-plugin.ts', 'cookies/session-cookies.ts',
    'fernet/base64.ts', 'fernet/bytes.ts', 'fernet/derive-key.ts', 'fernet/fernet.ts', 'fernet/hkdf.ts', 'fernet/public.ts',
    'options.ts', 'session.ts',
    'stores/express.ts', 'stores/memory.ts', 'stores/memory-express.ts', 'stores/redis-client.ts', 'stores/redis.ts', 'stores/store.ts'
  ].sort())
})

t.test('every file of lib/ keeps its folder\'s import rule', async (t) => {
  for (const file of libFiles) {
    t.same(violations(file, readFileSync(join(root, 'lib', file), 'utf8')), [], `lib/${file}`)
  }
})

t.test('each folder\'s main file opens by saying what the folder is and what it may import', async (t) => {
  for (const main of ['fernet/fernet.ts', 'cookies/session-cookies.ts', 'backends/backend.ts', 'stores/store.ts']) {
    const opening = readFileSync(join(root, 'lib', main), 'utf8').split('\n').slice(0, 3).join('\n')
    t.match(opening, new RegExp(`^// lib/${main.split('/')[0]}/: `), `lib/${main} names its folder`)
    t.match(opening, /import/, `lib/${main} says what may be imported`)
  }
})

t.test('index.ts stays the wiring file, under 300 lines', async (t) => {
  const lines = readFileSync(join(root, 'index.ts'), 'utf8').split('\n').length
  t.ok(lines < 300, `index.ts has ${lines} lines`)
})
