// Debian's Chromium (/usr/bin/chromium, installed by .ci/run with apt) for the browser tests,
// driven by playwright-core, which never downloads a browser of its own. Where Chromium is
// missing, callers skip with the reason; REQUIRE_CHROMIUM=1 (set by .ci/run) turns that skip
// into a failure, as REQUIRE_PYTHON_INTEROP=1 does for Python.
import { accessSync, constants } from 'node:fs'

export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium'
export const requireChromium = process.env.REQUIRE_CHROMIUM === '1'

/** The flags the browser tests run Chromium with: headless, quiet, nothing fetched from outside. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic'
]

/**
 * Why Chromium cannot be used here, or undefined when it can.
 * Throws instead when REQUIRE_CHROMIUM=1, so a CI run cannot skip the browser tests silently.
 */
export function chromiumMissing (): string | undefined {
  let reason: string | undefined
  try {
    accessSync(CHROMIUM, constants.X_OK)
  } catch (error) {
    reason = `${CHROMIUM} is not there or not executable (${(error as NodeJS.ErrnoException).code ?? String(error)}); install it with \`apt-get install chromium\``
  }
  if (reason !== undefined && requireChromium) throw new Error(`REQUIRE_CHROMIUM=1 but ${reason}`)
  return reason
}
