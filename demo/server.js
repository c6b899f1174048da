// `npm start`: serves the demo on http://localhost:3000 (PORT and HOST override).
import { buildDemo } from './app.js'

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
const app = await buildDemo({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })
await app.listen({ port, host })
console.log(`Demo: open http://localhost:${app.server.address().port}/`)
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => { app.close().then(() => process.exit(0)) })
}
