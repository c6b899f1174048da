#!/usr/bin/env bash
# What a user installs: `npm pack`, install the tarball into an empty project, then use it
# from import and require, with TypeScript types resolving under both.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$root"
tarball="$(npm pack --silent --pack-destination "$work" 2>/dev/null | tail -n 1)"
# The listing goes to a file and grep reads the file: never `tar | grep -q` under pipefail, where
# grep's early exit kills tar with SIGPIPE and fails the line at random.
tar -tzf "$work/$tarball" > "$work/contents.txt"
echo "packed $tarball: $(wc -l < "$work/contents.txt") files"
grep -Eq '^package/dist/esm/index.d.ts$' "$work/contents.txt" || { echo 'types missing from the tarball' >&2; exit 1; }
if grep -Eq '^package/(test|bench|demo|lib|node_modules)/' "$work/contents.txt"; then
  echo 'the tarball ships files users do not need' >&2; exit 1
fi
cd "$work"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund "./$tarball" fastify@5 "typescript@$(node -p "require('$root/node_modules/typescript/package.json').version")" >/dev/null 2>&1
cat > esm.mjs <<'JS'
import Fastify from 'fastify'
import encryptedSession, { Fernet, MultiFernet, InvalidToken } from 'fastify-encrypted-session'
const app = Fastify()
await app.register(encryptedSession, { key: Fernet.generateKey() })
app.get('/', async (request) => { request.session.set('n', 1); return 'ok' })
const response = await app.inject('/')
if (!/^session=gAAAAA/.test(response.headers['set-cookie'])) throw new Error('no session cookie')
if (typeof MultiFernet !== 'function' || typeof InvalidToken !== 'function') throw new Error('missing exports')
console.log('import: ok')
JS
cat > cjs.cjs <<'JS'
const Fastify = require('fastify')
const { Fernet, InvalidToken } = require('fastify-encrypted-session')
const app = Fastify()
app.register(require('fastify-encrypted-session'), { key: Fernet.generateKey() })
app.get('/', async (request) => { request.session.set('n', 1); return 'ok' })
app.inject('/').then((response) => {
  if (!/^session=gAAAAA/.test(response.headers['set-cookie'])) throw new Error('no session cookie')
  if (typeof InvalidToken !== 'function') throw new Error('missing exports')
  console.log('require: ok')
})
JS
cat > check.mts <<'TS'
import Fastify from 'fastify'
import encryptedSession, { Fernet } from 'fastify-encrypted-session'
declare module 'fastify-encrypted-session' {
  interface SessionData { visits: number }
}
const app = Fastify()
await app.register(encryptedSession, { key: Fernet.generateKey() })
app.get('/', async (request) => {
  // @ts-expect-error SessionData, augmented above through the published types, says a number
  request.session.set('visits', 'many')
  return (request.session.get('visits') ?? 0) + 1
})
TS
cat > check.cts <<'TS'
import Fastify = require('fastify')
import session = require('fastify-encrypted-session')
const app = Fastify.default()
app.register(session.default, { key: session.Fernet.generateKey() })
app.get('/', async (request) => (request.session.get('visits') ?? 0) + 1)
TS
node esm.mjs
node cjs.cjs
npx tsc --noEmit --strict --skipLibCheck --module nodenext --moduleResolution nodenext --target es2022 check.mts check.cts
echo 'types: ok (nodenext, ESM and CommonJS)'
