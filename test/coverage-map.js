// Coverage is required (100% of lines and branches, tap's default) of the product: index.ts
// and lib/. Test helpers, the demo and the benchmarks are not counted.
import { readdirSync } from 'node:fs'

const product = ['index.ts', ...readdirSync(new URL('../lib', import.meta.url), { recursive: true })
  .filter((name) => name.endsWith('.ts'))
  .map((name) => `lib/${name}`)]

export default () => product
