// dist/cjs holds CommonJS with .js names, inside a "type": "module" package; this marker
// makes Node read them as CommonJS, so require() gets real CommonJS, not require(esm).
import { writeFileSync } from 'node:fs'

writeFileSync(new URL('../dist/cjs/package.json', import.meta.url), '{ "type": "commonjs" }\n')
