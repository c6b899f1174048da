// Runs real Python (Debian's /usr/bin/python3 with python3-cryptography) for interop tests.
// Where it is missing, callers skip with the reason; REQUIRE_PYTHON_INTEROP=1 (set by .ci/run)
// turns that skip into a failure so CI always proves interop.
import { spawnSync } from 'node:child_process'
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
