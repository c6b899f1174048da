// `npm start`: serves the demo on http://localhost:3000 (PORT and HOST override). The start
// script runs this file with `exec`, so that a process manager's signal to the started process
// reaches node rather than a shell that would leave node running.
import { buildDemo } from './app.js'

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
const app = await buildDemo({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })

let stopping = false
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    // A second signal while closing: the operator insists, so stop now.
    if (stopping) process.exit(1)
    stopping = true
    app.log.info(`Demo: ${signal}, closing`)
    // Requests in flight get a bounded time to finish; a stuck one must not keep the process up.
    setTimeout(() => process.exit(1), 10_000).unref()
    app.close().then(() => process.exit(0), (error) => {
      app.log.error(error, 'Demo: error while closing')
      process.exit(1)
    })
  })
}

await app.listen({ port, host })
console.log(`Demo: open http://localhost:${app.server.address().port}/`)
