// `npx fastify-encrypted-session keygen`: keys for the plugin and for Python's Fernet alike.
// Everything that touches the process (streams, the terminal) comes in through CliIo, so that
// every branch here runs under the unit tests; bin/ supplies the real thing.
import { parseArgs } from 'node:util'
import { DEFAULT_ITERATIONS, deriveKey } from './fernet/derive-key.js'
import { Fernet } from './fernet/fernet.js'

export interface PromptOptions {
  /** Whether the typed text is shown; false for the passphrase. */
  echo: boolean
}

export interface CliIo {
  out: (text: string) => void
  err: (text: string) => void
  /**
   * Standard input, for --derive when it is not a terminal. The passphrase is never taken from
   * argv, where shells keep history and other users can see it in the process list.
   */
  input: AsyncIterable<Uint8Array>
  /**
   * Given only when standard input is a terminal: shows `question` on standard error and reads
   * one line, finished by Enter, with echo off unless `options.echo`. Resolves to undefined at
   * end of input (Ctrl-D on an empty line); rejects with an error named 'AbortError' on Ctrl-C.
   * Either way the terminal is back in the mode it was in before it settles.
   */
  prompt?: (question: string, options: PromptOptions) => Promise<string | undefined>
}

export const USAGE = `Usage: fastify-encrypted-session keygen [--derive [--salt SALT] [--iterations N]]

  keygen            Print a new random Fernet key (32 bytes, url-safe base64), the form
                    Python's Fernet.generate_key() prints. Set it as the plugin's key.
  keygen --derive   Derive the key from a passphrase with PBKDF2-HMAC-SHA256 and print it.
                    At a terminal it asks for the passphrase (not shown as you type it) and,
                    unless --salt is given, for the salt; Enter ends each answer. From a pipe
                    or file it reads the passphrase from the first line of standard input and
                    the salt from the second (unless --salt is given). The passphrase must be
                    at least 32 bytes, as for the plugin's secret option.
  --salt SALT       The salt for --derive, at least 16 bytes. --salt=SALT works too, and is
                    how to give a salt that starts with "-".
  --iterations N    PBKDF2 rounds for --derive (default ${DEFAULT_ITERATIONS.toLocaleString('en')}); use the server's.
  -h, --help        Show this help.

Options may come in any order after keygen, as --name VALUE or --name=VALUE. Exit status:
0 when a key was printed, 1 when it could not be made (e.g. a salt under 16 bytes), 2 on a
usage error, 130 when interrupted with Ctrl-C.

Rotate keys by putting the new key first: key: "NEW,OLD".`

const OPTIONS = {
  derive: { type: 'boolean' },
  salt: { type: 'string' },
  iterations: { type: 'string' },
  help: { type: 'boolean', short: 'h' }
} as const

function usageError (io: CliIo, message: string): number {
  io.err(`${message}\n\n${USAGE}\n`)
  return 2
}

/**
 * The lines of `input`, without their line ends (LF or CRLF), each as soon as it has arrived: a
 * writer that keeps the pipe open after the lines needed is not waited on. At the end of input
 * what is left is one more line, so a last line needs no line end.
 */
async function * linesOf (input: AsyncIterable<Uint8Array>): AsyncGenerator<string, void> {
  const decoder = new TextDecoder()
  let text = ''
  for await (const chunk of input) {
    text += decoder.decode(chunk, { stream: true })
    for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n')) {
      yield text.slice(0, end).replace(/\r$/, '')
      text = text.slice(end + 1)
    }
  }
  yield text + decoder.decode()
}

/** Where the answers come from: prompts at a terminal, or the lines of piped input. */
interface Answers {
  /** The next answer; undefined at the end of input. */
  next: (question: string, options: PromptOptions) => Promise<string | undefined>
  /** Lets go of standard input, which would otherwise keep the process waiting on the pipe. */
  close: () => Promise<void>
}

function answersFrom (io: CliIo): Answers {
  if (io.prompt !== undefined) return { next: io.prompt, close: async () => {} }
  const lines = linesOf(io.input)
  return {
    next: async () => (await lines.next()).value ?? undefined,
    close: async () => { await lines.return() }
  }
}

async function derive (io: CliIo, saltOption: string | undefined, iterations: number): Promise<number> {
  const answers = answersFrom(io)
  let passphrase: string
  let salt: string
  try {
    passphrase = await answers.next('Passphrase: ', { echo: false }) ?? ''
    // Checked before the salt is asked for, so a bare Enter at a terminal ends at once.
    if (passphrase === '') {
      io.err('keygen --derive: passphrase must not be empty\n')
      return 1
    }
    // The salt is echoed: it is no secret (it is configured beside the key, and alone gives
    // nothing away), and it has to match the server's byte for byte, so the typist should see it.
    salt = saltOption ?? await answers.next('Salt: ', { echo: true }) ?? ''
  } catch (error) {
    if ((error as Error).name === 'AbortError') {
      io.err('keygen --derive: aborted\n')
      return 130
    }
    io.err(`keygen --derive: cannot read standard input: ${(error as Error).message}\n`)
    return 1
  } finally {
    await answers.close()
  }
  try {
    io.out(`${await deriveKey(passphrase, salt, { iterations })}\n`)
    return 0
  } catch (error) {
    io.err(`keygen --derive: ${(error as Error).message}\n`)
    return 1
  }
}

/** Runs the command line; resolves to the exit code. */
export async function main (argv: string[], io: CliIo): Promise<number> {
  // A lenient pass first, so that --help anywhere wins over any mistake beside it; it still
  // tells an option from an option's value (--salt=--help is a salt).
  const { tokens } = parseArgs({ args: argv, options: OPTIONS, strict: false, allowPositionals: true, tokens: true })
  if (argv[0] === 'help' || tokens.some((token) => token.kind === 'option' && token.name === 'help')) {
    io.out(`${USAGE}\n`)
    return 0
  }
  const [command, ...rest] = argv
  if (command !== 'keygen') {
    return usageError(io, command === undefined ? 'No command given' : `Unknown command: ${command}`)
  }
  let values: { derive?: boolean, salt?: string, iterations?: string }
  try {
    ({ values } = parseArgs({ args: rest, options: OPTIONS, strict: true, allowPositionals: false }))
  } catch (error) {
    // parseArgs' own messages name the option and the fault ("Unknown option '--bits'").
    return usageError(io, (error as Error).message)
  }
  if (values.derive !== true) {
    if (values.salt !== undefined || values.iterations !== undefined) {
      return usageError(io, '--salt and --iterations are options of --derive')
    }
    io.out(`${Fernet.generateKey()}\n`)
    return 0
  }
  let iterations = DEFAULT_ITERATIONS
  if (values.iterations !== undefined) {
    iterations = Number(values.iterations)
    // Number() alone would take '1e3', '0x10' or ' 7 '; only plain digits are a count here.
    if (!/^[1-9][0-9]*$/.test(values.iterations) || !Number.isSafeInteger(iterations)) {
      return usageError(io, `--iterations must be a whole number, 1 or more: '${values.iterations}'`)
    }
  }
  return await derive(io, values.salt, iterations)
}
