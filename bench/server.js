// One benchmark server: a Fastify app for one variant, on 127.0.0.1 and an ephemeral port.
// Started by bench/run.js with child_process.fork; it reports its port over IPC, exits when
// the harness disconnects, and in any case after BENCH_MAX_LIFETIME_MS (a bounded lifetime).
//
//   BENCH_VARIANT   bare | ours | secure-session | iron | node-fernet | ours-cold |
//                   ours-noproxy | ours-memory | ours-redis | ours-redis-io | ours-redis-plain |
//                   session-redis | ours-redis-cluster | ours-redis-cluster-io | session-redis-cluster
//   BENCH_KEY       Fernet key (ours and its variants, node-fernet)
//   BENCH_SECURE_KEY  32 bytes in base64 (secure-session)
//   BENCH_IRON_PASSWORD  at least 32 characters (iron)
//   BENCH_SESSION_SECRET  at least 32 characters (session-redis)
//   BENCH_DIST      the built plugin (dist/esm layout) to load; BENCH_DIST_NOPROXY for ours-noproxy
//   BENCH_REDIS_URL the harness's redis-server (ours-redis, session-redis)
//   BENCH_REDIS_CLUSTER_NODES  the harness's Redis Cluster, JSON [{ host, port }] (the *-cluster variants)
//
// Routes (every session variant): GET /untouched, /read, /write, /login; and GET /__mem.
// /read and /write answer 401 when the request carried no valid session, so a bad cookie
// shows up as non-2xx in the load generator instead of as a suspiciously fast run.
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import secureJson from 'secure-json-parse'
import { REDIS_PREFIX, TTL, USER, VISITS, distModule, pluginEntry } from './common.js'
import { NodeFernet } from './node-fernet.js'

const variant = process.env.BENCH_VARIANT
const maxLifetime = Number(process.env.BENCH_MAX_LIFETIME_MS ?? 600_000)
setTimeout(() => {
  console.error(`bench server (${variant}): lifetime of ${maxLifetime} ms reached, exiting`)
  process.exit(3)
}, maxLifetime).unref()
process.on('disconnect', () => process.exit(0))

const cookieAttributes = { path: '/', httpOnly: true, sameSite: 'lax', secure: false, maxAge: TTL }

/** The session object the hook-based variants hand to routes: get/set and a changed flag. */
class HookSession {
  constructor (data) {
    this.data = data
    this.changed = false
  }

  get (key) { return this.data[key] }
  set (key, value) {
    this.data[key] = value
    this.changed = true
  }
}

/** A connected node-redis client on the harness's redis-server. */
async function redisClient () {
  const { createClient } = await import('redis')
  const client = createClient({ url: process.env.BENCH_REDIS_URL })
  await client.connect()
  return client
}

/** A connected node-redis cluster client on the harness's Redis Cluster. */
async function redisClusterClient () {
  const { createCluster } = await import('redis')
  const nodes = JSON.parse(process.env.BENCH_REDIS_CLUSTER_NODES)
  const client = createCluster({ rootNodes: nodes.map((socket) => ({ socket })) })
  // A node-redis client without an 'error' listener throws its errors; here they should show.
  client.on('error', (error) => console.error(`bench server (${variant}): redis cluster: ${error.message}`))
  await client.connect()
  return client
}

// The MemoryStore of the ours-memory variant: /__mem reports its size.
let memoryStore

const app = Fastify({ logger: false })
await app.register(fastifyCookie)

switch (variant) {
  case 'bare':
    break
  case 'ours': {
    const { default: encryptedSession } = await import(pluginEntry())
    await app.register(encryptedSession, { key: process.env.BENCH_KEY, ttl: TTL, cookie: { secure: false } })
    break
  }
  case 'ours-cold': {
    // No verified-token cache: every request with a cookie verifies and decrypts it.
    const { default: encryptedSession } = await import(pluginEntry())
    await app.register(encryptedSession, { key: process.env.BENCH_KEY, ttl: TTL, cookie: { secure: false }, cacheSize: 0 })
    break
  }
  case 'ours-noproxy': {
    // The harness's patched copy, whose Session constructor returns the instance, not a Proxy.
    const { default: encryptedSession } = await import(pluginEntry(process.env.BENCH_DIST_NOPROXY))
    await app.register(encryptedSession, { key: process.env.BENCH_KEY, ttl: TTL, cookie: { secure: false } })
    break
  }
  case 'ours-memory': {
    const { default: encryptedSession, MemoryStore } = await import(pluginEntry())
    memoryStore = new MemoryStore()
    await app.register(encryptedSession, { key: process.env.BENCH_KEY, ttl: TTL, cookie: { secure: false }, store: memoryStore })
    break
  }
  case 'ours-redis': {
    const { default: encryptedSession } = await import(pluginEntry())
    const { RedisStore } = await import(distModule('lib/stores/redis.js'))
    const client = await redisClient()
    await app.register(encryptedSession, {
      key: process.env.BENCH_KEY,
      ttl: TTL,
      cookie: { secure: false },
      store: new RedisStore({ client, prefix: REDIS_PREFIX['ours-redis'] })
    })
    break
  }
  case 'ours-redis-io':
  case 'ours-redis-plain': {
    // The same store on ioredis; and on node-redis with the data stored as plain JSON.
    const { default: encryptedSession } = await import(pluginEntry())
    const { RedisStore } = await import(distModule('lib/stores/redis.js'))
    let client
    if (variant === 'ours-redis-io') {
      const { Redis } = await import('ioredis')
      client = new Redis(process.env.BENCH_REDIS_URL)
      await new Promise((resolve, reject) => { client.once('ready', resolve); client.once('error', reject) })
    } else {
      client = await redisClient()
    }
    await app.register(encryptedSession, {
      key: process.env.BENCH_KEY,
      ttl: TTL,
      cookie: { secure: false },
      encryptStore: variant !== 'ours-redis-plain',
      store: new RedisStore({ client, prefix: REDIS_PREFIX[variant] })
    })
    break
  }
  case 'ours-redis-cluster':
  case 'ours-redis-cluster-io': {
    // ours-redis and ours-redis-io, with the client an app on a Redis Cluster would make.
    const { default: encryptedSession } = await import(pluginEntry())
    const { RedisStore } = await import(distModule('lib/stores/redis.js'))
    let client
    if (variant === 'ours-redis-cluster-io') {
      const { Cluster } = await import('ioredis')
      client = new Cluster(JSON.parse(process.env.BENCH_REDIS_CLUSTER_NODES))
      client.on('error', (error) => console.error(`bench server (${variant}): redis cluster: ${error.message}`))
      await new Promise((resolve, reject) => { client.once('ready', resolve); client.once('end', () => reject(new Error('ioredis Cluster ended before it was ready'))) })
    } else {
      client = await redisClusterClient()
    }
    await app.register(encryptedSession, {
      key: process.env.BENCH_KEY,
      ttl: TTL,
      cookie: { secure: false },
      store: new RedisStore({ client, prefix: REDIS_PREFIX[variant] })
    })
    break
  }
  case 'session-redis':
  case 'session-redis-cluster': {
    // The peer's store mode as its README sets it up; cookieName 'session' only so that the
    // harness finds every variant's cookie under one name. rolling stays at its default (true):
    // the session is saved and its cookie set on every request that has one. connect-redis 9
    // needs nothing else on a node-redis cluster client: get, set, expire and del name one key
    // each, which the client routes to its slot's master; only its scans (clear, all, length,
    // which no route calls) need the cluster's masters, and it walks them itself.
    const { default: fastifySession } = await import('@fastify/session')
    const { RedisStore } = await import('connect-redis')
    let client
    if (variant === 'session-redis-cluster') {
      client = await redisClusterClient()
    } else {
      client = await redisClient()
      // connect-redis adds no 'error' listener, and node-redis throws without one.
      client.on('error', (error) => console.error(`bench server (${variant}): redis: ${error.message}`))
    }
    await app.register(fastifySession, {
      secret: process.env.BENCH_SESSION_SECRET,
      cookieName: 'session',
      cookie: { secure: false },
      saveUninitialized: false,
      store: new RedisStore({ client, prefix: REDIS_PREFIX[variant] })
    })
    break
  }
  case 'secure-session': {
    const { default: secureSession } = await import('@fastify/secure-session')
    await app.register(secureSession, {
      key: Buffer.from(process.env.BENCH_SECURE_KEY, 'base64'),
      expiry: TTL,
      cookie: { ...cookieAttributes }
    })
    break
  }
  case 'iron': {
    // iron-session's documented seal/unseal helpers, in the same hooks as the node:crypto variant.
    const { sealData, unsealData } = await import('iron-session')
    const password = process.env.BENCH_IRON_PASSWORD
    app.decorateRequest('session', null)
    app.addHook('onRequest', async (request) => {
      const token = request.cookies.session
      // unsealData answers {} for a bad or expired seal.
      const data = token === undefined ? {} : await unsealData(token, { password, ttl: TTL })
      request.session = new HookSession(data)
    })
    app.addHook('onSend', async (request, reply, payload) => {
      const session = request.session
      if (session !== null && session.changed) {
        reply.setCookie('session', await sealData(session.data, { password, ttl: TTL }), cookieAttributes)
      }
      return payload
    })
    break
  }
  case 'node-fernet': {
    const fernet = new NodeFernet(process.env.BENCH_KEY)
    const raw = { ...cookieAttributes, encode: (value) => value }
    app.decorateRequest('session', null)
    app.addHook('onRequest', (request, reply, done) => {
      const token = request.cookies.session
      let data = {}
      if (token !== undefined) {
        try {
          data = secureJson.parse(fernet.decrypt(token, { ttl: TTL }).toString('utf8'), undefined, { protoAction: 'error', constructorAction: 'error' })
        } catch {
          data = {}
        }
      }
      request.session = new HookSession(data)
      done()
    })
    app.addHook('onSend', (request, reply, payload, done) => {
      const session = request.session
      if (session !== null && session.changed) {
        reply.setCookie('session', fernet.encrypt(JSON.stringify(session.data)), raw)
      }
      done(null, payload)
    })
    break
  }
  default:
    throw new Error(`unknown BENCH_VARIANT ${JSON.stringify(variant)}`)
}

const unauthorized = (reply) => reply.code(401).send({ error: 'no session' })

// Fault injection, to check that the harness fails loudly: BENCH_INJECT_FAULT=variant/route
// makes that route answer 500 from its 20th request on (the harness's checks pass first).
const [faultVariant, faultRoute] = (process.env.BENCH_INJECT_FAULT ?? '').split('/')
if (faultVariant === variant) {
  let seen = 0
  app.addHook('onRequest', (request, reply, done) => {
    if (request.url === `/${faultRoute}` && ++seen >= 20) reply.code(500).send({ error: 'injected fault' })
    else done()
  })
}

if (variant === 'bare') {
  app.get('/bare', async () => ({ ok: true }))
} else {
  app.get('/untouched', async () => ({ ok: true }))
  app.get('/read', async (request, reply) => {
    const user = request.session.get('user')
    if (user === undefined) return unauthorized(reply)
    return { name: user.name }
  })
  app.get('/write', async (request, reply) => {
    const user = request.session.get('user')
    if (user === undefined) return unauthorized(reply)
    const visits = request.session.get('visits') + 1
    request.session.set('visits', visits)
    return { name: user.name, visits }
  })
  app.get('/login', async (request) => {
    request.session.set('user', { ...USER, roles: [...USER.roles] })
    request.session.set('visits', VISITS)
    return { ok: true }
  })
}

app.get('/__mem', async (request) => {
  const before = process.memoryUsage()
  let afterGc = null
  if (request.query.gc === '1' && typeof globalThis.gc === 'function') {
    globalThis.gc()
    afterGc = process.memoryUsage()
  }
  return { before, afterGc, storeSize: memoryStore?.size ?? null }
})

const address = await app.listen({ host: '127.0.0.1', port: 0 })
process.send({ type: 'ready', port: app.server.address().port, address })
