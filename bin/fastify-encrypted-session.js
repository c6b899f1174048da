#!/usr/bin/env node
// The command line: see lib/cli.ts. Standard input is read only when --derive asks for it.
import { main } from '../dist/esm/lib/cli.js'

async function readInput () {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return Buffer.concat(chunks).toString('utf8')
}

process.exitCode = await main(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  readInput
})
