import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { pbkdf2Sync } from 'node:crypto'
import { type CliIo, main } from '../lib/cli.js'
import { Fernet } from '../lib/fernet.js'

function io (input = ''): CliIo & { stdout: string, stderr: string } {
  const result = {
    stdout: '',
    stderr: '',
    out: (text: string) => { result.stdout += text },
    err: (text: string) => { result.stderr += text },
    readInput: async () => input
  }
  return result
}

const SALT = 'sixteen bytes salt'
const derived = (passphrase: string, salt: string, iterations: number): string =>
  pbkdf2Sync(passphrase, salt, iterations, 32, 'sha256').toString('base64url') + '=\n'

t.test('keygen prints a new Fernet key', async (t) => {
  const a = io()
  t.equal(await main(['keygen'], a), 0)
  t.match(a.stdout, /^[A-Za-z0-9_-]{43}=\n$/)
  t.ok(new Fernet(a.stdout.trim()), 'a usable key')
  const b = io()
  await main(['keygen'], b)
  t.not(b.stdout, a.stdout, 'random')
})

t.test('keygen --derive reads the passphrase (and salt) from standard input', async (t) => {
  const fromLines = io(`correct horse\n${SALT}\n`)
  t.equal(await main(['keygen', '--derive', '--iterations', '1000'], fromLines), 0)
  t.equal(fromLines.stdout, derived('correct horse', SALT, 1000))
  const withFlag = io('correct horse\r\n')
  t.equal(await main(['keygen', '--derive', '--salt', SALT, '--iterations', '1000'], withFlag), 0)
  t.equal(withFlag.stdout, fromLines.stdout, '--salt, CRLF input')
  const defaults = io(`p\n${SALT}`)
  t.equal(await main(['keygen', '--derive'], defaults), 0)
  t.equal(defaults.stdout, derived('p', SALT, 600_000), '600,000 iterations by default')

  const shortSalt = io('p\nshort\n')
  t.equal(await main(['keygen', '--derive'], shortSalt), 1)
  t.match(shortSalt.stderr, /salt must be at least 16 bytes/)
  const noSalt = io('p')
  t.equal(await main(['keygen', '--derive'], noSalt), 1, 'no salt at all')
  t.match(noSalt.stderr, /salt must be at least 16 bytes/)
  const empty = io('')
  t.equal(await main(['keygen', '--derive', '--salt', SALT], empty), 1)
  t.match(empty.stderr, /passphrase must not be empty/)
  t.notMatch(empty.stdout + empty.stderr, /correct horse/)
})

t.test('help and usage errors', async (t) => {
  for (const argv of [['--help'], ['-h'], ['help'], ['keygen', '--help']]) {
    const run = io()
    t.equal(await main(argv, run), 0, `${argv.join(' ')}: exit 0`)
    t.match(run.stdout, /Usage: fastify-encrypted-session keygen/)
    t.match(run.stdout, /PBKDF2-HMAC-SHA256/)
  }
  for (const [argv, message] of [[[], /No command given/], [['bogus'], /Unknown command: bogus/], [['keygen', '--bits'], /Unknown option: --bits/], [['keygen', '--derive', '--salt'], /incomplete option: --salt/], [['keygen', '--derive', '--pepper', 'x'], /incomplete option: --pepper/]] as const) {
    const run = io()
    t.equal(await main([...argv], run), 2, `${argv.join(' ')}: exit 2`)
    t.match(run.stderr, message)
    t.match(run.stderr, /Usage:/)
  }
})

t.test('the installed command (bin/)', async (t) => {
  const bin = new URL('../bin/fastify-encrypted-session.js', import.meta.url).pathname
  t.match(execFileSync(process.execPath, [bin, 'keygen'], { encoding: 'utf8' }), /^[A-Za-z0-9_-]{43}=\n$/)
  const derivedOut = execFileSync(process.execPath, [bin, 'keygen', '--derive', '--iterations', '1000'], { input: `pw\n${SALT}\n`, encoding: 'utf8' })
  t.equal(derivedOut, derived('pw', SALT, 1000))
  const bad = spawnSync(process.execPath, [bin, 'nope'], { encoding: 'utf8' })
  t.equal(bad.status, 2)
  t.match(bad.stderr, /Unknown command: nope/)
})
