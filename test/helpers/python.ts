// Runs real Python (Debian's /usr/bin/python3 with python3-cryptography) for interop tests.
// Where it is missing, callers skip with the reason; REQUIRE_PYTHON_INTEROP=1 (set by .ci/run)
// turns that skip into a failure so CI always proves interop.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const PYTHON = process.env.PYTHON_INTEROP_BIN ?? '/usr/bin/python3'
export const requirePython = process.env.REQUIRE_PYTHON_INTEROP === '1'

function probe (modules: string[]): string | undefined {
  const result = spawnSync(PYTHON, ['-c', `import ${modules.join(', ')}`], { encoding: 'utf8' })
  if (result.error !== undefined) return `${PYTHON} cannot run (${result.error.message})`
  if (result.status !== 0) return `${PYTHON} lacks ${modules.join(' or ')}: ${result.stderr.trim().split('\n').pop() ?? ''}`
  return undefined
}

/**
 * Why Python with the given modules cannot be used here, or undefined when it can.
 * Throws instead when REQUIRE_PYTHON_INTEROP=1, so a CI run cannot skip interop silently.
 */
export function pythonMissing (modules: string[] = ['cryptography']): string | undefined {
  const reason = probe(modules)
  if (reason !== undefined && requirePython) {
    throw new Error(`REQUIRE_PYTHON_INTEROP=1 but ${reason}`)
  }
  return reason
}

/** Runs test/fixtures/fernet_tool.py on a batch of operations, one JSON request per line. */
export function runFernetTool<T = unknown> (operations: object[]): T[] {
  const script = join(import.meta.dirname, '..', 'fixtures', 'fernet_tool.py')
  const input = operations.map((operation) => JSON.stringify(operation)).join('\n') + '\n'
  const result = spawnSync(PYTHON, [script], { input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  if (result.status !== 0) throw new Error(`fernet_tool.py failed: ${result.stderr}`)
  return result.stdout.trim().split('\n').map((line) => JSON.parse(line) as T)
}

/** The seed library's source archive (see ../shared/python/README.md), unchanged. */
const SEED_ARCHIVE = 'flask-encrypted-cookies-session-0.2.4.tar.gz'
const SEED_PLACES = [
  process.env.SEED_PYTHON_DIR,
  join(import.meta.dirname, '..', '..', '..', 'shared', 'python'),
  '/work/shared/python'
]

/**
 * Where flask-encrypted-cookies-session 0.2.4 can be unpacked from: its archive in
 * $SEED_PYTHON_DIR, in ../shared/python beside the repository, or in /work/shared/python.
 * With REQUIRE_PYTHON_INTEROP=1 a missing archive is an error, not a skip.
 */
export function seedArchive (): { archive?: string, missing?: string } {
  const archive = SEED_PLACES.filter((dir): dir is string => dir !== undefined && dir !== '').map((dir) => join(dir, SEED_ARCHIVE)).find((path) => existsSync(path))
  if (archive !== undefined) return { archive }
  const missing = `${SEED_ARCHIVE} is in none of ${SEED_PLACES.filter(Boolean).join(', ')} (set SEED_PYTHON_DIR)`
  if (requirePython) throw new Error(`REQUIRE_PYTHON_INTEROP=1 but ${missing}`)
  return { missing }
}

/**
 * Unpacks the seed library into a new temporary directory and gives the folder to put on
 * PYTHONPATH (the archive's top folder); `remove` deletes the directory.
 */
export function unpackSeedLibrary (archive: string): { pythonPath: string, remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'seed-python-'))
  const untar = spawnSync('tar', ['-xzf', archive, '-C', dir], { encoding: 'utf8' })
  if (untar.status !== 0) throw new Error(`tar could not unpack ${archive}: ${untar.stderr}`)
  return { pythonPath: join(dir, SEED_ARCHIVE.replace(/\.tar\.gz$/, '')), remove: () => { rmSync(dir, { recursive: true, force: true }) } }
}
