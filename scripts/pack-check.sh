#!/usr/bin/env bash
# What a user installs: `npm pack`, install the tarball into an empty project, then use it
# from import and require, with TypeScript types resolving under both.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$root"
# npm pack builds first (a lifecycle script): keep its output, and show it if anything fails.
if ! npm pack --pack-destination "$work" > "$work/pack.log" 2>&1; then
  echo 'npm pack failed:' >&2; cat "$work/pack.log" >&2; exit 1
fi
tarballs=("$work"/*.tgz)
[[ ${#tarballs[@]} == 1 && -f ${tarballs[0]} ]] || { echo "npm pack made no single tarball in $work" >&2; exit 1; }
tarball="$(basename "${tarballs[0]}")"
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
# What a TypeScript user has: the compiler we build with and Node's types of the major in our
# devDependencies (@types/node 20), both from the registry as a user would get them.
typescript="typescript@$(node -p "require('$root/node_modules/typescript/package.json').version")"
types_node="@types/node@$(node -p "require('$root/package.json').devDependencies['@types/node'].match(/\\d+/)[0]")"
npm install --prefer-offline --no-audit --no-fund "./$tarball" fastify@5 "$typescript" "$types_node" > install.log 2>&1 || { cat install.log >&2; exit 1; }
# Installing the package runs nothing of ours: npm 11 warns about any install script a package
# has (it once warned about "prepare"), and a user should see no such line.
if grep -Eiq 'install-scripts|fastify-encrypted-session.*(prepare|install)' install.log; then
  echo 'installing the tarball ran, or warned about, a script of ours:' >&2; cat install.log >&2; exit 1
fi
if node -e 'const s = require("./node_modules/fastify-encrypted-session/package.json").scripts ?? {}; process.exit(["preinstall", "install", "postinstall", "prepare"].some((name) => name in s) ? 1 : 0)'; then :; else
  echo 'the packed package.json has an install-time script' >&2; exit 1
fi
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
node esm.mjs
node cjs.cjs
# Every public path of the exports map, from the installed tarball: import() and require() load
# it, and the declarations each condition names are in the package. A moved file fails here.
cat > paths.mjs <<'JS'
import { createRequire } from 'node:module'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
const require = createRequire(import.meta.url)
const dir = join('node_modules', 'fastify-encrypted-session')
const { exports } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
for (const [subpath, target] of Object.entries(exports)) {
  const name = 'fastify-encrypted-session' + subpath.slice(1)
  const json = subpath.endsWith('.json')
  const esm = json ? (await import(name, { with: { type: 'json' } })).default : await import(name)
  const cjs = require(name)
  const types = typeof target === 'string' ? [] : [target.import.types, target.require.types]
  for (const file of types) if (!existsSync(join(dir, file))) throw new Error(`${name}: ${file} is not in the package`)
  if (Object.keys(esm).length === 0 || cjs === undefined) throw new Error(`${name}: nothing exported`)
  console.log(`${name}: import ok, require ok${types.length > 0 ? `, types ${types.join(' and ')}` : ''}`)
}
JS
node paths.mjs
# The shipped declarations, type-checked as a user's compiler sees them: skipLibCheck off (so a
# .d.ts naming a type it does not import fails here), ESM resolution for the .mts and CommonJS
# for the .cts. The files live in types-dist/; lines marked @ts-expect-error must fail. One
# program each, as an ESM project and a CommonJS project: in one program the ESM and the
# CommonJS declarations would both augment 'fastify' and clash (TS2717).
cp "$root/types-dist/esm.mts" "$root/types-dist/cjs.cts" .
for file in esm.mts cjs.cts; do
  npx tsc --noEmit --strict --skipLibCheck false --module nodenext --moduleResolution nodenext --target es2022 "$file"
done
echo "types: ok (skipLibCheck off, nodenext ESM and CommonJS, $(node -p "'@types/node ' + require('@types/node/package.json').version"))"
