import t from 'tap'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { deriveKey } from '../index.js'
import { type CliIo, type PromptOptions, main } from '../lib/cli.js'
import { Fernet } from '../lib/fernet/fernet.js'
import { PYTHON, pythonMissing } from './helpers/python.js'

const SALT = 'sixteen bytes salt'
const PASSPHRASE = 'correct horse battery staple, twice over'
const derived = async (passphrase: string, salt: string, iterations: number): Promise<string> =>
  `${await deriveKey(passphrase, salt, { iterations })}\n`

interface FakeIo extends CliIo {
  stdout: string
  stderr: string
  /** Whether the code under test released standard input (ended its iteration). */
  released: boolean
  asked: Array<[string, PromptOptions]>
}

/**
 * A piped standard input of these chunks. Reading past them is an error rather than a wait: a
 * pipe still open after the lines that were needed must not be waited on.
 */
function piped (chunks: Array<string | Uint8Array>, { open = false, fail }: { open?: boolean, fail?: Error } = {}): FakeIo {
  async function * source (): AsyncGenerator<Uint8Array> {
    try {
      for (const chunk of chunks) yield typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk
      if (fail !== undefined) throw fail
      if (open) throw new Error('read past the lines needed, on a pipe that is still open')
    } finally {
      result.released = true
    }
  }
  const result: FakeIo = {
    stdout: '',
    stderr: '',
    released: false,
    asked: [],
    out: (text) => { result.stdout += text },
    err: (text) => { result.stderr += text },
    input: source()
  }
  return result
}

/** A terminal on which the user answers each prompt in turn; standard input must not be read. */
function terminal (answers: Array<string | undefined | Error>): FakeIo {
  const result = piped([], { fail: new Error('read standard input instead of prompting') })
  result.prompt = async (question, options) => {
    result.asked.push([question, options])
    const answer = answers.shift()
    if (answer instanceof Error) throw answer
    return answer
  }
  return result
}

const abort = (): Error => Object.assign(new Error('interrupted'), { name: 'AbortError' })

t.test('keygen prints a new Fernet key', async (t) => {
  const a = piped([])
  t.equal(await main(['keygen'], a), 0)
  t.match(a.stdout, /^[A-Za-z0-9_-]{43}=\n$/)
  t.ok(new Fernet(a.stdout.trim()), 'a usable key')
  const b = piped([])
  await main(['keygen'], b)
  t.not(b.stdout, a.stdout, 'random')
})

t.test('options in any order, as --name VALUE or --name=VALUE', async (t) => {
  const want = await derived(PASSPHRASE, SALT, 1000)
  const orders = [
    ['keygen', '--iterations', '1000', '--derive'],
    ['keygen', '--derive', '--iterations=1000'],
    ['keygen', '--iterations=1000', '--salt', SALT, '--derive'],
    ['keygen', '--derive', '--salt', SALT, '--iterations', '1000'],
    ['keygen', `--salt=${SALT}`, '--derive', '--iterations', '1000']
  ]
  for (const argv of orders) {
    const run = piped([`${PASSPHRASE}\n${SALT}\n`])
    t.equal(await main(argv, run), 0, argv.join(' '))
    t.equal(run.stdout, want, `${argv.join(' ')}: the key`)
    t.equal(run.stderr, '')
  }
  // A salt may begin with '-': in the '=' form it cannot be taken for an option.
  const dashed = piped([`${PASSPHRASE}\n`])
  t.equal(await main(['keygen', '--derive', `--salt=-${SALT}`, '--iterations=1000'], dashed), 0)
  t.equal(dashed.stdout, await derived(PASSPHRASE, `-${SALT}`, 1000))
  const defaults = piped([`${'p'.repeat(32)}\n${SALT}`])
  t.equal(await main(['keygen', '--derive'], defaults), 0)
  t.equal(defaults.stdout, await derived('p'.repeat(32), SALT, 600_000), '600,000 iterations by default')
})

t.test('piped input: the passphrase is the first line, the salt the second', async (t) => {
  const want = await derived(PASSPHRASE, SALT, 1000)
  const crlf = piped([`${PASSPHRASE}\r\n${SALT}\r\n`])
  t.equal(await main(['keygen', '--derive', '--iterations', '1000'], crlf), 0)
  t.equal(crlf.stdout, want, 'CRLF line ends are not part of the lines')
  const noFinalNewline = piped([`${PASSPHRASE}\n${SALT}`])
  t.equal(await main(['keygen', '--derive', '--iterations', '1000'], noFinalNewline), 0)
  t.equal(noFinalNewline.stdout, want, 'end of input ends the last line')
  t.ok(noFinalNewline.released)

  // The writer keeps the pipe open: the lines that were needed are enough, and input is let go.
  const open = piped([PASSPHRASE.slice(0, 7), `${PASSPHRASE.slice(7)}\n${SALT}`, '\nmore'], { open: true })
  t.equal(await main(['keygen', '--derive', '--iterations', '1000'], open), 0, open.stderr)
  t.equal(open.stdout, want, 'lines split across chunks')
  t.ok(open.released, 'standard input released once two lines were there')
  const oneLine = piped([`${PASSPHRASE}\n`], { open: true })
  t.equal(await main(['keygen', '--derive', '--salt', SALT, '--iterations', '1000'], oneLine), 0, oneLine.stderr)
  t.equal(oneLine.stdout, want, 'with --salt one line is enough')
  t.ok(oneLine.released)

  // A character split between two reads is decoded whole.
  const bytes = new TextEncoder().encode(`${'pässwörd'.repeat(4)}\n`)
  const split = piped([bytes.subarray(0, 2), bytes.subarray(2)])
  t.equal(await main(['keygen', '--derive', '--salt', SALT, '--iterations', '1000'], split), 0)
  t.equal(split.stdout, await derived('pässwörd'.repeat(4), SALT, 1000))
})

t.test('piped input that cannot make a key', async (t) => {
  const shortSalt = piped([`${PASSPHRASE}\nshort\n`])
  t.equal(await main(['keygen', '--derive'], shortSalt), 1)
  t.match(shortSalt.stderr, /salt must be at least 16 bytes/)
  const noSalt = piped([PASSPHRASE])
  t.equal(await main(['keygen', '--derive'], noSalt), 1, 'no salt at all')
  t.match(noSalt.stderr, /salt must be at least 16 bytes/)
  const emptySalt = piped([`${PASSPHRASE}\n`])
  t.equal(await main(['keygen', '--derive', '--salt='], emptySalt), 1, 'an empty --salt= is a salt, and too short')
  t.match(emptySalt.stderr, /salt must be at least 16 bytes/)
  const empty = piped([])
  t.equal(await main(['keygen', '--derive', '--salt', SALT], empty), 1)
  t.match(empty.stderr, /passphrase must not be empty/)
  const blankLine = piped(['\n'], { open: true })
  t.equal(await main(['keygen', '--derive'], blankLine), 1)
  t.match(blankLine.stderr, /passphrase must not be empty/)
  for (const run of [shortSalt, noSalt, emptySalt, empty, blankLine]) t.equal(run.stdout, '')
  t.notMatch(emptySalt.stderr, /horse/, 'the passphrase is not repeated')

  const broken = piped([`${PASSPHRASE.slice(0, 5)}`], { fail: new Error('EIO: i/o error, read') })
  t.equal(await main(['keygen', '--derive'], broken), 1)
  t.equal(broken.stderr, 'keygen --derive: cannot read standard input: EIO: i/o error, read\n')
  t.equal(broken.stdout, '')
})

t.test('at a terminal: prompts, the passphrase unechoed and the salt echoed', async (t) => {
  const asked = terminal([PASSPHRASE, SALT])
  t.equal(await main(['keygen', '--derive', '--iterations', '1000'], asked), 0)
  t.same(asked.asked, [['Passphrase: ', { echo: false }], ['Salt: ', { echo: true }]])
  t.equal(asked.stdout, await derived(PASSPHRASE, SALT, 1000))
  t.equal(asked.stderr, '')
  t.notOk(asked.released, 'standard input is left to the prompts')

  const withSalt = terminal([PASSPHRASE])
  t.equal(await main(['keygen', '--derive', '--salt', SALT, '--iterations=1000'], withSalt), 0)
  t.same(withSalt.asked, [['Passphrase: ', { echo: false }]], 'no salt prompt with --salt')
  t.equal(withSalt.stdout, asked.stdout)

  // Ctrl-D (undefined) or a bare Enter: there is nothing to derive from, so no salt is asked.
  for (const answer of [undefined, '']) {
    const none = terminal([answer, SALT])
    t.equal(await main(['keygen', '--derive'], none), 1)
    t.equal(none.stderr, 'keygen --derive: passphrase must not be empty\n')
    t.equal(none.asked.length, 1)
  }
  const noSalt = terminal([PASSPHRASE, undefined])
  t.equal(await main(['keygen', '--derive'], noSalt), 1, 'Ctrl-D at the salt prompt')
  t.equal(noSalt.stderr, 'keygen --derive: salt must be at least 16 bytes\n')
})

t.test('at a terminal: Ctrl-C and failures abort without a key', async (t) => {
  const atPassphrase = terminal([abort()])
  t.equal(await main(['keygen', '--derive'], atPassphrase), 130)
  t.equal(atPassphrase.stderr, 'keygen --derive: aborted\n')
  const atSalt = terminal([PASSPHRASE, abort()])
  t.equal(await main(['keygen', '--derive'], atSalt), 130)
  t.equal(atSalt.stderr, 'keygen --derive: aborted\n')
  t.notMatch(atSalt.stderr, /horse/)
  const broken = terminal([new Error('EIO: i/o error, read')])
  t.equal(await main(['keygen', '--derive'], broken), 1)
  t.equal(broken.stderr, 'keygen --derive: cannot read standard input: EIO: i/o error, read\n')
  for (const run of [atPassphrase, atSalt, broken]) t.equal(run.stdout, '')
})

t.test('help, anywhere', async (t) => {
  for (const argv of [['--help'], ['-h'], ['help'], ['keygen', '--help'], ['keygen', '--derive', '-h'], ['keygen', '--bits', '--help'], ['bogus', '--help']]) {
    const run = terminal([])
    t.equal(await main(argv, run), 0, `${argv.join(' ')}: exit 0`)
    t.match(run.stdout, /^Usage: fastify-encrypted-session keygen/)
    t.match(run.stdout, /PBKDF2-HMAC-SHA256/)
    t.equal(run.stderr, '')
    t.equal(run.asked.length, 0)
  }
  // The value of an option, not a request for help.
  const salted = piped([`${PASSPHRASE}\n`])
  t.equal(await main(['keygen', '--derive', '--salt=--help'], salted), 1)
  t.match(salted.stderr, /salt must be at least 16 bytes/)
})

t.test('usage errors: exit 2, the fault and the usage on stderr, nothing read', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [[], /^No command given\n/],
    [['bogus'], /^Unknown command: bogus\n/],
    [['--derive', 'keygen'], /^Unknown command: --derive\n/],
    [['keygen', '--bits'], /Unknown option '--bits'/],
    [['keygen', '--derive', '--pepper', 'x'], /Unknown option '--pepper'/],
    [['keygen', '-x'], /Unknown option '-x'/],
    [['keygen', '--derive', 'extra'], /Unexpected argument 'extra'/],
    [['keygen', '--derive', '--salt'], /--salt/],
    [['keygen', '--derive', '--iterations'], /--iterations/],
    [['keygen', '--derive', '--salt', '--iterations', '1000'], /--salt/],
    [['keygen', '--derive=yes'], /--derive/],
    [['keygen', '--salt', SALT], /^--salt and --iterations are options of --derive\n/],
    [['keygen', '--iterations=1000'], /^--salt and --iterations are options of --derive\n/],
    [['keygen', '--derive', '--iterations', 'many'], /^--iterations must be a whole number, 1 or more: 'many'\n/],
    [['keygen', '--derive', '--iterations=1.5'], /: '1\.5'\n/],
    [['keygen', '--derive', '--iterations=0'], /: '0'\n/],
    [['keygen', '--derive', '--iterations=-5'], /: '-5'\n/],
    [['keygen', '--derive', '--iterations=1e3'], /: '1e3'\n/],
    [['keygen', '--derive', '--iterations=99999999999999999999'], /: '99999999999999999999'\n/]
  ]
  for (const [argv, message] of cases) {
    const run = terminal([PASSPHRASE, SALT])
    t.equal(await main(argv, run), 2, `${argv.join(' ')}: exit 2`)
    t.match(run.stderr, message, argv.join(' '))
    t.match(run.stderr, /\n\nUsage: fastify-encrypted-session keygen/)
    t.equal(run.stdout, '')
    t.equal(run.asked.length, 0, 'nothing asked')
  }
})

const BIN = join(import.meta.dirname, '..', 'bin', 'fastify-encrypted-session.js')
// Every child is bounded: a command that hangs fails its test instead of blocking the run.
const TIMEOUT = 20_000

t.test('the installed command (bin/), with piped input', async (t) => {
  t.match(execFileSync(process.execPath, [BIN, 'keygen'], { encoding: 'utf8', timeout: TIMEOUT }), /^[A-Za-z0-9_-]{43}=\n$/)
  const want = await derived(PASSPHRASE, SALT, 1000)
  const lines = spawnSync(process.execPath, [BIN, 'keygen', '--iterations', '1000', '--derive'], { input: `${PASSPHRASE}\n${SALT}\n`, encoding: 'utf8', timeout: TIMEOUT })
  t.equal(lines.status, 0, lines.stderr)
  t.equal(lines.stdout, want)
  t.equal(lines.stderr, '', 'no prompt when input is piped')
  const flag = spawnSync(process.execPath, [BIN, 'keygen', `--salt=${SALT}`, '--derive', '--iterations=1000'], { input: PASSPHRASE, encoding: 'utf8', timeout: TIMEOUT })
  t.equal(flag.status, 0, flag.stderr)
  t.equal(flag.stdout, want, '--salt=VALUE, and end of input ends the line')

  const bad = spawnSync(process.execPath, [BIN, 'keygen', '--salt', SALT], { encoding: 'utf8', timeout: TIMEOUT })
  t.equal(bad.status, 2)
  t.match(bad.stderr, /^--salt and --iterations are options of --derive\n\nUsage:/)
  const help = spawnSync(process.execPath, [BIN, 'keygen', '--derive', '-h'], { encoding: 'utf8', timeout: TIMEOUT })
  t.equal(help.status, 0)
  t.match(help.stdout, /^Usage:/)
})

t.test('the installed command does not wait for the end of a pipe it has the lines from', async (t) => {
  const child = spawn(process.execPath, [BIN, 'keygen', '--derive', '--iterations', '1000'], { stdio: ['pipe', 'pipe', 'pipe'], timeout: TIMEOUT })
  let stdout = ''
  child.stdout.setEncoding('utf8').on('data', (text: string) => { stdout += text })
  // Both lines, and the pipe left open: the command has to finish without end of input.
  child.stdin.write(`${PASSPHRASE}\n${SALT}\n`)
  const [code, signal] = await once(child, 'exit') as [number | null, NodeJS.Signals | null]
  child.stdin.destroy()
  t.equal(signal, null, 'not killed at the timeout')
  t.equal(code, 0)
  t.equal(stdout, await derived(PASSPHRASE, SALT, 1000))
})

interface TerminalRun {
  output: string
  status: number
  timedOut: boolean
  echoAtStep: boolean[]
  modeAfter: { echo: boolean, icanon: boolean }
  failure: string | null
}

const PTY_DRIVER = join(import.meta.dirname, 'fixtures', 'cli-pty.py')
// Python's pty module gives the command a real pseudo-terminal as its controlling terminal.
// Missing, the tests skip and say why; with REQUIRE_PYTHON_INTEROP=1 this throws: CI fails.
const noPty = pythonMissing(['pty', 'termios'])

/** Runs the installed command on a pseudo-terminal, typing each `send` once its `expect` shows. */
function atTerminal (args: string[], steps: Array<[expect: string, send: string]>): TerminalRun {
  const run = spawnSync(PYTHON, [PTY_DRIVER, JSON.stringify(steps), process.execPath, BIN, ...args], { encoding: 'utf8', timeout: 2 * TIMEOUT, env: { ...process.env, CLI_PTY_TIMEOUT: String(TIMEOUT / 1000) } })
  if (run.status !== 0) throw new Error(`cli-pty.py failed: ${run.error?.message ?? ''} ${run.stderr}`)
  return JSON.parse(run.stdout) as TerminalRun
}

const keyIn = (output: string): string | undefined => /(?:^|\n)([A-Za-z0-9_-]{43}=)\r?\n/.exec(output)?.[1]

t.test('at a real terminal: prompts, no echo, Enter ends each answer', { skip: noPty ?? false }, async (t) => {
  const run = atTerminal(['keygen', '--derive', '--iterations', '1000'], [['Passphrase: ', `${PASSPHRASE}\r`], ['Salt: ', `${SALT}\r`]])
  // The pty is never closed and no Ctrl-D is sent: the command exited on the Enters alone.
  t.equal(run.failure, null, 'both prompts shown')
  t.equal(run.timedOut, false, 'exited without end of input')
  t.equal(run.status, 0, run.output)
  t.notMatch(run.output, /horse/, 'the passphrase never shows')
  t.same(run.echoAtStep, [false, false], 'the terminal echoes nothing while the answers are typed')
  t.ok(run.output.includes(SALT), 'the salt is echoed')
  t.equal(keyIn(run.output), await deriveKey(PASSPHRASE, SALT, { iterations: 1000 }))
  t.same(run.modeAfter, { echo: true, icanon: true }, 'the terminal is back to echo and line mode')
})

t.test('at a real terminal with --salt: one prompt, and line editing works', { skip: noPty ?? false }, async (t) => {
  // 'X' then Backspace (DEL, as terminals send it): the passphrase ends in 'horse'.
  const run = atTerminal(['keygen', `--salt=${SALT}`, '--derive', '--iterations=1000'], [['Passphrase: ', 'a passphrase of 32+ bytes: horsX\x7fe\r']])
  t.equal(run.failure, null)
  t.equal(run.timedOut, false)
  t.equal(run.status, 0, run.output)
  t.notMatch(run.output, /Salt: /, 'no salt prompt')
  t.notMatch(run.output, /hors/)
  t.equal(keyIn(run.output), await deriveKey('a passphrase of 32+ bytes: horse', SALT, { iterations: 1000 }))
})

t.test('at a real terminal: Ctrl-C aborts and gives the terminal back', { skip: noPty ?? false }, async (t) => {
  const run = atTerminal(['keygen', '--derive', '--iterations', '1000'], [['Passphrase: ', 'half typed\x03']])
  t.equal(run.failure, null)
  t.equal(run.timedOut, false)
  t.equal(run.status, 130, 'exit 130, as a shell reports an interrupt')
  t.match(run.output, /keygen --derive: aborted/)
  t.notMatch(run.output, /half typed/)
  t.equal(keyIn(run.output), undefined, 'no key')
  t.same(run.modeAfter, { echo: true, icanon: true })
})

t.test('--derive refuses a passphrase the secret option would refuse (under 32 bytes)', async (t) => {
  const short = piped(['hunter2\n', `${SALT}\n`])
  t.equal(await main(['keygen', '--derive', '--iterations', '1000'], short), 1)
  t.equal(short.stdout, '', 'no key printed')
  t.match(short.stderr, /^keygen --derive: passphrase must be at least 32 bytes \(it is 7\)/)
  t.notMatch(short.stderr, /hunter2/, 'the passphrase is not repeated')
  const enough = piped([`${'p'.repeat(32)}\n${SALT}\n`])
  t.equal(await main(['keygen', '--derive', '--iterations', '1000'], enough), 0, '32 bytes are enough')
  t.equal(enough.stdout, await derived('p'.repeat(32), SALT, 1000))
})
