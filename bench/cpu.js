// How much of the machine's CPU went to processes other than the benchmark's own while a
// measurement ran: the benchmark shares its 2 cores with whatever else runs (tests, builds),
// and a measurement taken under contention is flagged instead of silently trusted.
// Linux only (/proc); elsewhere every reading is null.
import { readFileSync } from 'node:fs'

function machineTicks () {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal ...
  const idle = fields[3] + (fields[4] ?? 0)
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0)
  return { busy: total - idle, total }
}

function processTicks (pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return Number(fields[11]) + Number(fields[12])
  } catch {
    return 0
  }
}

/** A snapshot to pass to foreignShare() later; pids are the benchmark's own processes. */
export function cpuSnapshot (pids) {
  try {
    return { machine: machineTicks(), own: pids.reduce((sum, pid) => sum + processTicks(pid), 0), pids }
  } catch {
    return null
  }
}

/** Fraction (0..1) of all the machine's CPU time between the snapshots used by other processes. */
export function foreignShare (before) {
  if (before === null) return null
  const after = cpuSnapshot(before.pids)
  if (after === null) return null
  const total = after.machine.total - before.machine.total
  if (total <= 0) return null
  const foreign = (after.machine.busy - before.machine.busy) - (after.own - before.own)
  return Math.max(0, foreign / total)
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * A gate against contention on a shared machine. Before a measurement, wait() samples the CPU
 * that other processes use (while ours are idle) until it is at most `threshold` of the machine;
 * after one, retry() says whether to measure again because others used more than `maxForeign`.
 * All waiting and retrying draws on one time budget, so the run stays bounded; once the budget
 * is spent, measurements go on and their foreign share is recorded and reported.
 */
export class QuietGate {
  constructor ({ threshold = 0.1, maxForeign = 0.15, retries = 2, budgetMs = 90_000, sampleMs = 250, maxWaitMs = 15_000, enabled = true } = {}) {
    Object.assign(this, { threshold, maxForeign, retries, sampleMs, maxWaitMs, enabled })
    this.remainingMs = budgetMs
    this.waitedMs = 0
    this.retried = 0
  }

  async wait (pids) {
    if (!this.enabled) return null
    const start = Date.now()
    let share = null
    do {
      const snapshot = cpuSnapshot(pids)
      await sleep(this.sampleMs)
      share = foreignShare(snapshot)
      if (share === null || share <= this.threshold) break
    } while (Date.now() - start < Math.min(this.maxWaitMs, this.remainingMs))
    const waited = Math.max(0, Date.now() - start - this.sampleMs)
    this.remainingMs -= waited
    this.waitedMs += waited
    return share
  }

  /** Whether to measure again; `share` is the foreign share during the measurement just taken. */
  retry (share, attempt, costMs) {
    if (!this.enabled || share === null || share <= this.maxForeign) return false
    if (attempt >= this.retries || this.remainingMs < costMs) return false
    this.remainingMs -= costMs
    this.retried++
    return true
  }

  summary () {
    return { enabled: this.enabled, threshold: this.threshold, maxForeign: this.maxForeign, waitedSeconds: this.waitedMs / 1000, retries: this.retried, budgetLeftSeconds: Math.max(0, this.remainingMs) / 1000 }
  }
}
