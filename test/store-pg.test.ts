// Store mode on a real PostgreSQL (Debian's postgresql, started by the test in a temporary
// directory on a free loopback port) through connect-pg-simple, unchanged: an express-session
// store, as @fastify/session users have it.
import t from 'tap'
import { EventEmitter } from 'node:events'
import { createRequire } from 'node:module'
import pg from 'pg'
import { Fernet } from '../index.js'
import { buildApp } from './helpers/app.js'
import { Jar, sessionBehaviours } from './helpers/behaviours.js'
import { serversMissing, startPostgres } from './helpers/servers.js'

const skip = serversMissing('postgres')
// connect-pg-simple extends the Store of the session library it is given; express-session's is
// an EventEmitter with helpers the plugin never calls, so an EventEmitter stands in for it.
const connectPgSimple = createRequire(import.meta.url)('connect-pg-simple') as (session: { Store: typeof EventEmitter }) => new (options: object) => { close: () => Promise<void> }
const PgStore = connectPgSimple({ Store: EventEmitter })

async function pgStore (t: import('tap').Test): Promise<{ store: InstanceType<typeof PgStore>, pool: pg.Pool }> {
  const server = await startPostgres(t)
  const pool = new pg.Pool({ connectionString: server.connectionString })
  // An idle client whose server stops reports it as an 'error' on the pool; teardown stops the
  // server, and the test has no use for that report.
  pool.on('error', () => {})
  const store = new PgStore({ pool, createTableIfMissing: true, pruneSessionInterval: false })
  // Ended before the server stops (teardowns run in the order they were added).
  t.teardown(async () => { await store.close(); await pool.end() })
  return { store, pool }
}

t.test('connect-pg-simple passes the behavioural suite', { skip }, async (t) => {
  const { store } = await pgStore(t)
  await sessionBehaviours(t, { store: store as never })
})

t.test('what the table holds: its own expiry, nothing readable; revocation', { skip }, async (t) => {
  const { store, pool } = await pgStore(t)
  const { app } = await buildApp({ key: Fernet.generateKey(), ttl: 3600, store: store as never }, (app) => {
    app.get('/login/:id', async (request) => { request.session.login({ id: (request.params as { id: string }).id }); request.session.set('note', 'secret-note'); return {} })
    app.get('/read', async (request) => ({ isNew: request.session.isNew, data: request.session.data() }))
  })
  const phone = new Jar()
  const laptop = new Jar()
  phone.take(await app.inject({ url: '/login/ada-lovelace', cookies: phone.cookies }))
  laptop.take(await app.inject({ url: '/login/ada-lovelace', cookies: laptop.cookies }))
  const { rows } = await pool.query('select sid, sess, expire from session order by sid')
  t.equal(rows.length, 2, 'two sessions, and no list of the user\'s sessions')
  for (const row of rows as Array<{ sid: string, sess: { cookie: unknown }, expire: Date }>) {
    const left = row.expire.getTime() - Date.now()
    // connect-pg-simple rounds the expiry up to a whole second.
    t.ok(left > 3_500_000 && left <= 3_601_000, `${row.sid.slice(0, 8)}: the table's own expiry column follows the ttl (${left} ms left)`)
  }
  t.notMatch(JSON.stringify(rows), /ada|secret-note/, 'a dump of the table reveals no user, no data')
  await app.revokeSessions('ada-lovelace')
  for (const jar of [phone, laptop]) t.same((await app.inject({ url: '/read', cookies: jar.cookies })).json(), { isNew: true, data: {} })
  const left = (await pool.query('select sid, sess from session order by sid')).rows as Array<{ sid: string, sess: unknown }>
  t.same(left.map((row) => row.sid.replace(/^rev\.[A-Za-z0-9_-]{43}$/, 'rev.<hmac>').replace(/^ended\.[A-Za-z0-9_-]{22}$/, 'ended.<id>')), ['ended.<id>', 'ended.<id>', 'rev.<hmac>'], 'their rows are gone once seen; what is left marks them as ended, beside the user\'s revocation record')
  t.notMatch(JSON.stringify(left), /ada|secret-note|gAAAAA/, 'and neither holds data')
})
