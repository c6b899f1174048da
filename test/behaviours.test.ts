// One behavioural suite, every mode: the session in the cookie, in a MemoryStore (encrypted at
// rest or plain JSON), and in an express-session store with callbacks or with promises. Real
// Redis and PostgreSQL run the same suite in test/store-redis.test.ts and test/store-pg.test.ts.
import t from 'tap'
import { MemoryStore } from '../index.js'
import { sessionBehaviours } from './helpers/behaviours.js'
import { CallbackStore, PromiseStore } from './helpers/express-stores.js'

t.test('in the cookie', async (t) => { await sessionBehaviours(t) })

t.test('in a MemoryStore', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => { store.close() })
  await sessionBehaviours(t, { store })
})

t.test('in a MemoryStore, as plain JSON', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => { store.close() })
  await sessionBehaviours(t, { store, encryptStore: false })
})

t.test('in an express-session store with callbacks', async (t) => { await sessionBehaviours(t, { store: new CallbackStore() }) })

t.test('in an express-session store with promises and without touch', async (t) => { await sessionBehaviours(t, { store: new PromiseStore() }) })
