// `npx fastify-encrypted-session keygen`: keys for the plugin and for Python's Fernet alike.
import { DEFAULT_ITERATIONS, deriveKey } from './derive-key.js'
import { Fernet } from './fernet.js'

export interface CliIo {
  out: (text: string) => void
  err: (text: string) => void
  /** All of standard input, for --derive; never taken from argv, where shells keep history. */
  readInput: () => Promise<string>
}

export const USAGE = `Usage: fastify-encrypted-session keygen [--derive [--salt SALT] [--iterations N]]

  keygen            Print a new random Fernet key (32 bytes, url-safe base64), the form
                    Python's Fernet.generate_key() prints. Set it as the plugin's key.
  keygen --derive   Derive the key from a passphrase with PBKDF2-HMAC-SHA256 and print it.
                    Reads the passphrase from the first line of standard input, and the salt
                    from --salt or the second line (at least 16 bytes).
  --iterations N    PBKDF2 rounds for --derive (default ${DEFAULT_ITERATIONS.toLocaleString('en')}).
  --help            Show this help.

Rotate keys by putting the new key first: key: "NEW,OLD".`

async function derive (args: string[], io: CliIo): Promise<number> {
  let salt: string | undefined
  let iterations = DEFAULT_ITERATIONS
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]
    const value = args[i + 1]
    if ((flag === '--salt' || flag === '--iterations') && value !== undefined) {
      i++
      if (flag === '--salt') salt = value
      else iterations = Number(value)
    } else {
      io.err(`Unknown or incomplete option: ${String(flag)}\n\n${USAGE}\n`)
      return 2
    }
  }
  const lines = (await io.readInput()).split(/\r?\n/)
  // split() always yields a first element; an empty input is an empty passphrase.
  const passphrase = lines[0] as string
  salt ??= lines[1] ?? ''
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
  const [command, ...rest] = argv
  if (command === '--help' || command === '-h' || command === 'help' || rest.includes('--help')) {
    io.out(`${USAGE}\n`)
    return 0
  }
  if (command !== 'keygen') {
    io.err(`${command === undefined ? 'No command given' : `Unknown command: ${command}`}\n\n${USAGE}\n`)
    return 2
  }
  if (rest[0] === '--derive') return await derive(rest.slice(1), io)
  if (rest.length > 0) {
    io.err(`Unknown option: ${String(rest[0])}\n\n${USAGE}\n`)
    return 2
  }
  io.out(`${Fernet.generateKey()}\n`)
  return 0
}
