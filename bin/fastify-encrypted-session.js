#!/usr/bin/env node
// The command line: lib/cli.ts decides what to ask and what to print; this file gives it the
// process's streams and, when standard input is a terminal, a way to ask for a line.
import { createInterface } from 'node:readline'
import { Writable } from 'node:stream'
import { main } from '../dist/esm/lib/cli.js'

// readline does the terminal work: it puts the terminal in raw mode, so the terminal echoes
// nothing and Ctrl-C arrives as a key (not a signal that would kill the process before the mode
// is put back), gives line editing (Backspace, Ctrl-U), and restores the mode on close(). For a
// secret, its output, where it echoes what is typed, is a sink.
function prompt (question, { echo }) {
  return new Promise((resolve, reject) => {
    const sink = new Writable({ write: (chunk, encoding, callback) => callback() })
    // historySize 0: readline keeps no copy of the passphrase for the up-arrow.
    const rl = createInterface({ input: process.stdin, output: echo ? process.stderr : sink, terminal: true, historySize: 0 })
    let settled = false
    // close() first, so the terminal is back to normal before anything else is printed.
    const finish = (settle) => {
      if (settled) return
      settled = true
      rl.close()
      settle()
    }
    rl.on('line', (line) => finish(() => {
      // Unechoed, the Enter did not move the cursor off the prompt's line.
      if (!echo) process.stderr.write('\n')
      resolve(line)
    }))
    rl.on('SIGINT', () => finish(() => {
      process.stderr.write('\n')
      reject(Object.assign(new Error('interrupted'), { name: 'AbortError' }))
    }))
    // Ctrl-D on an empty line, or the terminal went away: end of input.
    rl.on('close', () => finish(() => {
      process.stderr.write('\n')
      resolve(undefined)
    }))
    // Shown only now that raw mode is on: whatever is typed after the prompt is not echoed.
    if (echo) {
      rl.setPrompt(question)
      rl.prompt()
    } else {
      process.stderr.write(question)
    }
  })
}

process.exitCode = await main(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  input: process.stdin,
  prompt: process.stdin.isTTY ? prompt : undefined
})
