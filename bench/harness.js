// What bench/run.js and bench/before-after.js share: starting a server variant in a child
// process, plain requests, and a load run with autocannon whose every answer is checked.
import { fork } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..')

/**
 * Forks bench/server.js for one variant and waits for its port. `children` collects the child
 * (the caller kills what is left on exit); `onUnexpectedExit` hears of a server that dies
 * before stop() was called.
 */
export async function startServer (variant, { env = {}, execArgv = [], children, maxLifetimeMs = 600_000, onUnexpectedExit }) {
  const child = fork(path.join(here, 'server.js'), [], {
    cwd: root,
    execArgv,
    env: { ...process.env, ...env, BENCH_VARIANT: variant, BENCH_MAX_LIFETIME_MS: String(maxLifetimeMs) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  children.add(child)
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    children.delete(child)
    resolve({ code, signal })
  }))
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${variant} server did not start within 20 s`)), 20_000)
    child.once('message', (message) => {
      clearTimeout(timer)
      if (message?.type === 'ready') resolve(message.port)
      else reject(new Error(`${variant} server sent ${JSON.stringify(message)}`))
    })
    exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`${variant} server exited during start (code ${code}, signal ${signal})`))
    })
  }).catch((error) => {
    child.kill('SIGKILL')
    throw error
  })
  let stopping = false
  exited.then(({ code, signal }) => { if (!stopping) onUnexpectedExit?.(`${variant} server exited unexpectedly (code ${code}, signal ${signal})`) })
  return {
    port,
    pid: child.pid,
    url: `http://127.0.0.1:${port}`,
    async stop () {
      stopping = true
      if (child.connected) child.disconnect()
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
  }
}

/** name=value of a Set-Cookie header. */
export const cookiePair = (setCookie) => setCookie.split(';')[0]

export async function get (url, cookie) {
  const response = await fetch(url, { headers: cookie === undefined ? {} : { cookie } })
  return { status: response.status, body: await response.text(), setCookies: response.headers.getSetCookie() }
}

/**
 * A load run. Either one `cookie` for every request, whose answers must equal `expectBody`, or
 * `cookies`, one per connection (a connection's requests then follow one another on one
 * session, as a browser's do) or an array per connection (visited in turn), whose answers
 * `makeCheck()` judges: it is called once per session and returns (body) => boolean, so a check
 * can follow that session alone.
 */
export async function load (url, { connections, duration, amount, cookie, expectBody, cookies, makeCheck, requests }) {
  let mismatches = 0
  const options = {
    url,
    connections,
    timeout: 10,
    // autocannon stops only at a sample tick (default every 1000 ms): tick often, so that
    // short durations are honoured. Requests/s below is 2xx answers ÷ elapsed time.
    sampleInt: 100
  }
  if (amount !== undefined) options.amount = amount
  else options.duration = duration
  if (requests !== undefined) {
    options.requests = requests
  } else if (cookies !== undefined) {
    const route = new URL(url).pathname
    let next = 0
    options.setupClient = (client) => {
      // A connection's cookie, or its several visited in turn: each session's answers are
      // judged in their own order, by a check of their own.
      const mine = [cookies[next++ % cookies.length]].flat()
      client.setRequests(mine.map((cookie) => {
        const check = makeCheck()
        return {
          method: 'GET',
          path: route,
          headers: { cookie },
          onResponse: (status, body) => { if (status >= 200 && status < 300 && !check(body)) mismatches++ }
        }
      }))
    }
  } else {
    options.headers = cookie === undefined ? {} : { cookie }
    options.expectBody = expectBody
  }
  const result = await autocannon(options)
  return {
    reqPerSec: result.duration > 0 ? result['2xx'] / result.duration : NaN,
    p50: result.latency.p50,
    p99: result.latency.p99,
    latencyMean: result.latency.mean,
    requests: result.requests.total,
    ok: result['2xx'],
    duration: result.duration,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    mismatches: result.mismatches + mismatches
  }
}

/** What went wrong in a load run; empty when nothing did. */
export function problems (r) {
  const bad = []
  if (r.errors) bad.push(`${r.errors} errors`)
  if (r.timeouts) bad.push(`${r.timeouts} timeouts`)
  if (r.non2xx) bad.push(`${r.non2xx} non-2xx`)
  if (r.mismatches) bad.push(`${r.mismatches} unexpected bodies`)
  if (!(r.requests > 0)) bad.push('no requests completed')
  return bad
}
