// better-sqlite3, a native addon, for the SQLite store's tests. npm builds it from source for
// the Node that installed it; under another Node (scripts/node-versions.sh runs the suite on
// 22 and 24) that build cannot load, so the script builds one for each Node and names it in
// BETTER_SQLITE3_BINDING, which better-sqlite3's `nativeBinding` option loads instead.
import { createRequire } from 'node:module'
import { requireStores } from './servers.js'

type Database = new (file: string, options?: object) => { close: () => void, prepare: (sql: string) => { get: () => unknown } }

export function betterSqlite3 (): { Database: Database, options: object, skip: string | false } {
  const Database = createRequire(import.meta.url)('better-sqlite3') as Database
  const binding = process.env.BETTER_SQLITE3_BINDING
  const options = binding === undefined || binding === '' ? {} : { nativeBinding: binding }
  try {
    new Database(':memory:', options).close()
    return { Database, options, skip: false }
  } catch (error) {
    const reason = `better-sqlite3 does not load in Node ${process.version} (${(error as Error).message.split('\n')[0] as string}); \`npm rebuild better-sqlite3\` builds it for this Node`
    if (requireStores) throw new Error(`REQUIRE_STORES=1 but ${reason}`)
    return { Database, options, skip: reason }
  }
}
