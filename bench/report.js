// Turning measurements into ratios, a text table and an SVG chart. No I/O here.
import { COOKIE_PEERS, REDIS_CLUSTER_VARIANTS, SESSION_ROUTES, SPREAD_ROUTE, STORE_ROUTES, STORE_VARIANTS, VARIANTS, VARIANT_LABELS, median } from './common.js'

/** Ratio of medians, with the median and range of the per-round (paired) ratios. */
export function ratio (a, b) {
  const value = a.median / b.median
  const paired = []
  const n = Math.min(a.rounds.length, b.rounds.length)
  for (let i = 0; i < n; i++) {
    if (Number.isFinite(a.rounds[i]) && Number.isFinite(b.rounds[i]) && b.rounds[i] > 0) paired.push(a.rounds[i] / b.rounds[i])
  }
  return {
    value,
    pairedMedian: median(paired),
    pairedMin: paired.length ? Math.min(...paired) : NaN,
    pairedMax: paired.length ? Math.max(...paired) : NaN
  }
}

function goalMet (value, goal) {
  if (goal === undefined || !Number.isFinite(value)) return undefined
  return goal.op === '>=' ? value >= goal.value : value > goal.value
}

/** HTTP cell lookup: {median, rounds} of requests/s. */
function httpSeries (http, variant, route) {
  const cell = http.cells.find((c) => c.variant === variant && c.route === route)
  return cell === undefined ? undefined : { median: cell.reqPerSec, rounds: cell.rounds.map((r) => r?.used === false ? NaN : (r?.reqPerSec ?? NaN)) }
}

export function computeRatios ({ http, micro, memory, proxy }) {
  const ratios = []
  const add = (group, name, a, b, goal, extra = {}) => {
    if (a === undefined || b === undefined) return
    const r = ratio(a, b)
    ratios.push({ group, name, ...r, goal: goal === undefined ? null : (goal.label ?? `${goal.op} ${goal.value}`), met: goalMet(r.value, goal) ?? null, ...extra })
  }
  if (http !== undefined) {
    const series = (variant, route) => httpSeries(http, variant, route)
    const ours = (route) => series('ours', route)
    const bare = series('bare', 'bare')
    const goals = {
      read: { 'secure-session': { op: '>=', value: 1.0 } },
      write: { 'secure-session': { op: '>=', value: 0.45 }, iron: { op: '>=', value: 3 } }
    }
    for (const route of SESSION_ROUTES) {
      for (const other of COOKIE_PEERS) {
        add(`http ${route}`, `ours ÷ ${other}`, ours(route), series(other, route), goals[route]?.[other])
      }
    }
    // The read path without the verified-token cache: every request verifies and decrypts.
    for (const other of ['secure-session', 'node-fernet', 'ours']) {
      add('http read, cold', `ours-cold ÷ ${other}`, series('ours-cold', 'read'), series(other, 'read'))
    }
    // Below 1: what the Proxy around every Session costs a read.
    add('http read, Proxy', 'ours ÷ ours-noproxy', ours('read'), series('ours-noproxy', 'read'))
    // Issue 18's goals against @fastify/session + connect-redis, on the bench's own write route.
    const storeGoals = {
      read: { 'ours-redis': { op: '>=', value: 1.5 }, 'ours-redis-io': { op: '>=', value: 1.5 } },
      write: { 'ours-redis': { op: '>=', value: 0.75 }, 'ours-redis-plain': { op: '>=', value: 1.0 } }
    }
    for (const route of STORE_ROUTES) {
      for (const mine of ['ours-redis', 'ours-redis-io', 'ours-redis-plain', 'ours-memory']) {
        add(`http ${route}, store`, `${mine} ÷ session-redis`, series(mine, route), series('session-redis', route), storeGoals[route]?.[mine])
      }
      add(`http ${route}, store`, 'ours-redis ÷ ours (cookie)', series('ours-redis', route), ours(route))
    }
    // The same comparison on a 3-master Redis Cluster; then what the cluster costs each side
    // against one redis-server (below 1: the cluster client's routing, a hop per key).
    for (const route of STORE_ROUTES) {
      for (const mine of ['ours-redis-cluster', 'ours-redis-cluster-io']) {
        add(`http ${route}, cluster`, `${mine} ÷ session-redis-cluster`, series(mine, route), series('session-redis-cluster', route))
      }
      add(`http ${route}, cluster`, 'ours-redis-cluster ÷ ours-redis', series('ours-redis-cluster', route), series('ours-redis', route))
      add(`http ${route}, cluster`, 'session-redis-cluster ÷ session-redis', series('session-redis-cluster', route), series('session-redis', route))
    }
    for (const variant of VARIANTS) {
      add('http untouched ÷ bare', `${variant} untouched ÷ bare`, series(variant, 'untouched'), bare,
        variant === 'ours' ? { op: '>=', value: 0.9 } : undefined)
    }
    for (const variant of VARIANTS) {
      add('http read ÷ bare', `${variant} read ÷ bare`, series(variant, 'read'), bare)
      add('http write ÷ bare', `${variant} write ÷ bare`, series(variant, 'write'), bare)
    }
  }
  if (proxy !== undefined) {
    // Nanoseconds, so above 1 is the Proxy's cost.
    const series = (build, op) => {
      const cell = proxy.results.find((c) => c.build === build && c.op === op)
      return cell === undefined ? undefined : { median: cell.nsPerOp, rounds: cell.rounds }
    }
    for (const op of [...new Set(proxy.results.map((c) => c.op))]) {
      const a = series('proxy', op)
      const b = series('noproxy', op)
      add('micro Session ns/op', `${op}: with Proxy ÷ without`, a, b, undefined, { nsWith: a?.median, nsWithout: b?.median })
    }
  }
  if (memory?.readOneCookieAfter !== undefined && http !== undefined) {
    const after = memory.readOneCookieAfter.reqPerSec
    add('memory', `ours read, one cookie, after ${memory.distinctTokens} sessions ÷ fresh server`, { median: after, rounds: [] }, httpSeries(http, 'ours', 'read'))
  }
  if (micro !== undefined) {
    const series = (impl, op, size, batch) => {
      const cell = micro.results.find((c) => c.impl === impl && c.op === op && c.size === size && c.batch === batch)
      return cell === undefined ? undefined : { median: cell.opsPerSec, rounds: cell.rounds }
    }
    for (const batch of [micro.config.inFlight, 1]) {
      for (const op of ['encrypt', 'decrypt']) {
        for (const size of micro.config.sizes) {
          const inFlight = batch !== 1
          add(`micro ${op} ${batch === 1 ? 'one at a time' : `${batch} in flight`}`, `${size} B: ours ÷ node:crypto`,
            series('ours', op, size, batch), series('node-fernet', op, size, batch), inFlight ? { op: '>=', value: 1 / 3, label: '>= 0.33 (within 3x)' } : undefined)
          add(`micro ${op} ${batch === 1 ? 'one at a time' : `${batch} in flight`}`, `${size} B: ours ÷ npm fernet`,
            series('ours', op, size, batch), series('npm-fernet', op, size, batch), inFlight ? { op: '>', value: 1 } : undefined)
        }
      }
    }
  }
  return ratios
}

export const fmtInt = (n) => Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a'
export const fmt2 = (n) => Number.isFinite(n) ? n.toFixed(2) : 'n/a'
export const fmtMB = (bytes) => Number.isFinite(bytes) ? `${(bytes / 1048576).toFixed(1)} MiB` : 'n/a'

export function table (headers, rows, align) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)))
  const line = (cells) => cells.map((c, i) => align[i] === 'r' ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i])).join('  ').trimEnd()
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

export function textReport (results) {
  const out = []
  const { machine, settings } = results
  out.push(`fastify-encrypted-session benchmark${settings.quick ? ' (QUICK smoke mode: numbers are not meaningful)' : ''}`)
  out.push(`${machine.cpuModel} × ${machine.cores} cores, Node ${machine.node}, ${machine.platform}; ${results.date}; commit ${machine.commit}`)
  const c = results.contention
  if (c?.foreignCpuMax != null) {
    const pct = (v) => `${(v * 100).toFixed(1)}%`
    const g = [c.gate, c.microGate].filter(Boolean)
    out.push(`Other processes' CPU during the measurements used: median ${pct(c.foreignCpuMedian)}, max ${pct(c.foreignCpuMax)} of the machine; ` +
      `${c.httpRoundsLeftOut ?? 0} HTTP round(s) left out; the quiet gate ${g.some((x) => x.enabled) ? `waited ${g.reduce((n, x) => n + x.waitedSeconds, 0).toFixed(1)} s and re-measured ${g.reduce((n, x) => n + x.retries, 0)} time(s)` : 'was off'}`)
    if (c.foreignCpuMax > 0.15) out.push('WARNING: other processes were busy during some measurements used; those numbers are noisy')
  }
  if (results.http !== undefined) {
    const { http } = results
    out.push('')
    out.push(`HTTP (autocannon, ${settings.connections} connections, ${settings.duration}s per cell after ${settings.warmup}s warm-up, ${settings.rounds} interleaved rounds; medians)`)
    const rows = http.cells.map((c) => {
      const rps = c.rounds.filter((r) => r?.used).map((r) => r.reqPerSec)
      return [c.route, VARIANT_LABELS[c.variant], fmtInt(c.reqPerSec), fmt2(c.p99), fmt2(c.p50),
        rps.length ? `${fmtInt(Math.min(...rps))}–${fmtInt(Math.max(...rps))}` : 'n/a',
        c.setCookie ?? '', `${c.roundsUsed}/${c.rounds.length}`, Number.isFinite(c.foreignCpuMax) ? `${(c.foreignCpuMax * 100).toFixed(0)}%` : 'n/a']
    })
    out.push(table(['route', 'variant', 'req/s', 'p99 ms', 'p50 ms', 'req/s over rounds', 'Set-Cookie', 'rounds used', 'other CPU'], rows, ['l', 'l', 'r', 'r', 'r', 'r', 'l', 'r', 'r']))
    out.push('(rounds used: rounds measured while other processes used more than 15% of the CPU are left out while enough clean rounds remain;')
    out.push(' other CPU: the most that other processes used during a round that was used)')
    out.push('(p99/p50: autocannon records latency in whole milliseconds; a .5 is a median of two rounds)')
    const spread = http.cells.filter((c) => c.route === SPREAD_ROUTE && Number.isFinite(c.revisitSeconds))
    if (spread.length) {
      out.push(`(${SPREAD_ROUTE}: /write with ${spread[0].sessions}; each session written again after ${
        spread.map((c) => `${c.variant} ${c.revisitSeconds.toFixed(1)} s`).join(', ')} at the median rate${
        spread.some((c) => c.revisitSeconds < 1) ? '; WARNING: under a second for some, so the token of the session\'s last second could be reused: raise --spread' : ''})`)
    }
    out.push(`(store variants: one session per connection; /write answers must count up by one per connection; Set-Cookie on /write: ${
      Object.entries(http.reissue ?? {}).map(([v, how]) => `${v}: ${how}`).join('; ') || 'n/a'})`)
    const r = results.redis
    if (r?.version !== undefined) out.push(`(Redis: redis-server ${r.version} started by the harness on 127.0.0.1:${r.port}, FLUSHALL before every Redis measurement, one key prefix per variant)`)
    const rc = results.redisCluster
    if (rc?.version !== undefined) out.push(`(Redis Cluster: ${rc.masters} masters, no replicas, redis-server ${rc.version} started by the harness on 127.0.0.1:${rc.ports.join(',')}, FLUSHALL on every master before every cluster measurement)`)
    for (const [variant, reason] of Object.entries(http.skipped ?? {})) out.push(`SKIPPED ${variant}: ${reason}`)
  }
  if (results.micro !== undefined) {
    const { micro } = results
    out.push('')
    out.push(`Micro: Fernet ops/s (median of ${micro.config.rounds} rounds of ${micro.config.cellMs} ms per cell)`)
    const impls = ['ours', 'node-fernet', 'npm-fernet']
    const rows = []
    for (const op of ['encrypt', 'decrypt']) {
      for (const size of micro.config.sizes) {
        for (const batch of [1, micro.config.inFlight]) {
          const get = (impl) => micro.results.find((c) => c.impl === impl && c.op === op && c.size === size && c.batch === batch)?.opsPerSec
          rows.push([op, `${size} B`, batch === 1 ? '1 (await each)' : `${batch} in flight`, ...impls.map((i) => fmtInt(get(i)))])
        }
      }
    }
    out.push(table(['op', 'size', 'concurrency', 'ours', 'node:crypto', 'npm fernet'], rows, ['l', 'r', 'l', 'r', 'r', 'r']))
  }
  if (results.proxy !== undefined) {
    const { proxy } = results
    out.push('')
    out.push(`Session Proxy: ns per operation (median of ${proxy.config.rounds} rounds of ${proxy.config.cellMs} ms per cell); without = the copy patched in ${proxy.patch.file}: "${proxy.patch.from}" -> "${proxy.patch.to}"`)
    const ns = (build, op) => proxy.results.find((c) => c.build === build && c.op === op)?.nsPerOp
    const rows = [...new Set(proxy.results.map((c) => c.op))].map((op) => {
      const a = ns('proxy', op)
      const b = ns('noproxy', op)
      return [op, fmt2(a), fmt2(b), Number.isFinite(a - b) ? `${a - b >= 0 ? '+' : ''}${fmt2(a - b)}` : 'n/a']
    })
    out.push(table(['operation', 'with Proxy', 'without', 'difference'], rows, ['l', 'r', 'r', 'r']))
  }
  if (results.memory !== undefined) {
    const m = results.memory
    out.push('')
    out.push(`Memory: ours, ${fmtInt(m.requests)} requests to /read, each with a distinct session token (${fmtInt(m.distinctTokens)} distinct), ${fmtInt(m.reqPerSec)} req/s`)
    const row = (label, u) => [label, fmtMB(u?.heapUsed), fmtMB(u?.heapTotal), fmtMB(u?.rss), fmtMB(u?.external)]
    out.push(table(['when', 'heapUsed', 'heapTotal', 'rss', 'external'], [
      row('before load (after gc)', m.baseline),
      row('after load', m.after),
      row('after load, after gc', m.afterGc)
    ], ['l', 'r', 'r', 'r', 'r']))
    out.push(`retained by the load (heapUsed after gc − before): ${fmtMB(m.afterGc?.heapUsed - m.baseline?.heapUsed)}`)
    if (m.readOneCookieAfter) {
      out.push(`then /read with one cookie on that server: ${fmtInt(m.readOneCookieAfter.reqPerSec)} req/s, p99 ${fmt2(m.readOneCookieAfter.p99)} ms` +
        ` (the HTTP table's read cell uses a fresh server)`)
    }
  }
  if (results.memoryStore !== undefined) {
    const m = results.memoryStore
    out.push('')
    out.push(`Memory, store mode: ours with store: new MemoryStore(), ${fmtInt(m.requests)} requests to /login without a cookie (${fmtInt(m.sessionsCreated)} sessions created), ${fmtInt(m.reqPerSec)} req/s`)
    const row = (label, u) => [label, fmtMB(u?.heapUsed), fmtMB(u?.heapTotal), fmtMB(u?.rss), fmtMB(u?.external)]
    out.push(table(['when', 'heapUsed', 'heapTotal', 'rss', 'external'], [
      row('before load (after gc)', m.baseline),
      row('after load', m.after),
      row('after load, after gc', m.afterGc)
    ], ['l', 'r', 'r', 'r', 'r']))
    out.push(`store.size: ${fmtInt(m.storeSizeBefore)} before, ${fmtInt(m.storeSizeAfter)} after (expected ${fmtInt(m.expectedStoreSize)}: the default maxEntries is ${fmtInt(m.maxEntries)}); ` +
      `retained (heapUsed after gc − before): ${fmtMB(m.afterGc?.heapUsed - m.baseline?.heapUsed)}, ${Number.isFinite(m.storeSizeAfter - m.storeSizeBefore) && m.storeSizeAfter > m.storeSizeBefore ? `${fmtInt((m.afterGc.heapUsed - m.baseline.heapUsed) / (m.storeSizeAfter - m.storeSizeBefore))} bytes a session` : 'n/a'}`)
  }
  if (results.ratios?.length) {
    out.push('')
    out.push('Ratios (of medians; paired = per-round ratio, median [min–max])')
    const rows = results.ratios.map((r) => [r.group, r.name, fmt2(r.value), Number.isFinite(r.pairedMedian) ? `${fmt2(r.pairedMedian)} [${fmt2(r.pairedMin)}–${fmt2(r.pairedMax)}]` : '',
      r.goal ?? '', r.met === null ? '' : (r.met ? 'met' : 'NOT MET')])
    out.push(table(['group', 'ratio', 'value', 'paired', 'goal', ''], rows, ['l', 'l', 'r', 'r', 'l', 'l']))
  }
  out.push('')
  out.push(...reportEnd(results))
  return out.join('\n')
}

/** The last lines of a text report: where the time went, and every failure. */
export function reportEnd (results) {
  const lines = [`Time: ${Object.entries(results.timings).map(([k, v]) => `${k} ${v.toFixed(1)}s`).join(', ')}`]
  if (results.failures.length) lines.push('', `FAILURES (${results.failures.length}):`, ...results.failures.map((f) => `  - ${f}`))
  return lines
}

// ---------------------------------------------------------------- SVG chart

const ROUTE_LABELS = { untouched: 'session untouched', read: 'session read-only', write: 'session read + write', [SPREAD_ROUTE]: 'read + write, many sessions' }

const COLORS = {
  bare: '#9e9e9e',
  ours: '#1b7f5f',
  'secure-session': '#3567b5',
  iron: '#c0504d',
  'node-fernet': '#e0a02e',
  'npm-fernet': '#7d5ba6',
  'ours-cold': '#8fd1b5',
  'ours-noproxy': '#0b3d2e',
  'ours-memory': '#5fb58f',
  'ours-redis': '#1b7f5f',
  'ours-redis-io': '#66b89a',
  'ours-redis-plain': '#0d4f3a',
  'session-redis': '#8c564b',
  'ours-redis-cluster': '#1b7f5f',
  'ours-redis-cluster-io': '#66b89a',
  'session-redis-cluster': '#8c564b'
}

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
const short = (n) => !Number.isFinite(n) ? 'n/a' : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : n >= 1e3 ? `${(n / 1e3).toFixed(2)}k` : `${Math.round(n)}`

function niceMax (value) {
  if (!(value > 0)) return 1
  const exp = 10 ** Math.floor(Math.log10(value))
  for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (step * exp >= value) return step * exp
  return 10 * exp
}

/**
 * A grouped bar chart panel. groups: [{label, bars: [{key, value}]}]; reference: optional
 * {value, label} drawn as a dashed line.
 */
function panel ({ x, y, width, height, title, groups, reference, yLabel }) {
  const parts = []
  const plotLeft = x + 58
  const plotTop = y + 30
  const plotWidth = width - 70
  const plotHeight = height - 70
  const maxValue = niceMax(Math.max(...groups.flatMap((g) => g.bars.map((b) => b.value)).filter(Number.isFinite), reference?.value ?? 0) * 1.08)
  const yOf = (v) => plotTop + plotHeight - (v / maxValue) * plotHeight
  parts.push(`<text x="${x}" y="${y + 14}" class="title">${esc(title)}</text>`)
  for (let i = 0; i <= 4; i++) {
    const v = (maxValue * i) / 4
    const yy = yOf(v).toFixed(1)
    parts.push(`<line x1="${plotLeft}" y1="${yy}" x2="${plotLeft + plotWidth}" y2="${yy}" class="grid"/>`)
    parts.push(`<text x="${plotLeft - 6}" y="${(+yy + 4).toFixed(1)}" class="tick" text-anchor="end">${short(v)}</text>`)
  }
  parts.push(`<text transform="translate(${x + 12},${plotTop + plotHeight / 2}) rotate(-90)" class="tick" text-anchor="middle">${esc(yLabel)}</text>`)
  const groupWidth = plotWidth / groups.length
  groups.forEach((group, gi) => {
    const n = group.bars.length
    const barWidth = Math.min(34, (groupWidth * 0.8) / n)
    const start = plotLeft + gi * groupWidth + (groupWidth - barWidth * n) / 2
    group.bars.forEach((bar, bi) => {
      const bx = start + bi * barWidth
      const value = Number.isFinite(bar.value) ? bar.value : 0
      const top = yOf(value)
      parts.push(`<rect x="${bx.toFixed(1)}" y="${top.toFixed(1)}" width="${(barWidth - 3).toFixed(1)}" height="${(plotTop + plotHeight - top).toFixed(1)}" fill="${COLORS[bar.key] ?? '#888'}"><title>${esc(`${group.label} ${bar.key}: ${short(bar.value)}`)}</title></rect>`)
      parts.push(`<text x="${(bx + (barWidth - 3) / 2).toFixed(1)}" y="${(top - 4).toFixed(1)}" class="value" text-anchor="middle">${short(bar.value)}</text>`)
    })
    parts.push(`<text x="${(plotLeft + gi * groupWidth + groupWidth / 2).toFixed(1)}" y="${plotTop + plotHeight + 18}" class="label" text-anchor="middle">${esc(group.label)}</text>`)
  })
  if (reference !== undefined && Number.isFinite(reference.value)) {
    const ry = yOf(reference.value).toFixed(1)
    parts.push(`<line x1="${plotLeft}" y1="${ry}" x2="${plotLeft + plotWidth}" y2="${ry}" class="ref"/>`)
  }
  parts.push(`<line x1="${plotLeft}" y1="${plotTop + plotHeight}" x2="${plotLeft + plotWidth}" y2="${plotTop + plotHeight}" class="axis"/>`)
  return parts.join('\n')
}

function legend (x, y, keys, labels, referenceLabel) {
  const parts = []
  let cx = x
  for (const key of keys) {
    const label = labels[key] ?? key
    parts.push(`<rect x="${cx}" y="${y - 10}" width="12" height="12" fill="${COLORS[key]}"/>`)
    parts.push(`<text x="${cx + 17}" y="${y}" class="label">${esc(label)}</text>`)
    cx += 17 + label.length * 6.4 + 22
  }
  if (referenceLabel !== undefined) {
    parts.push(`<line x1="${cx}" y1="${y - 4}" x2="${cx + 22}" y2="${y - 4}" class="ref"/>`)
    parts.push(`<text x="${cx + 27}" y="${y}" class="label">${esc(referenceLabel)}</text>`)
  }
  return parts.join('\n')
}

/** Lines of small text below a panel; returns the new y. */
function subLines (parts, y, lines) {
  for (const line of lines) {
    parts.push(`<text x="20" y="${y + 12}" class="sub">${esc(line)}</text>`)
    y += 17
  }
  return y + 11
}

export function svgChart (results) {
  const width = 980
  const parts = []
  let y = 16
  const { machine, settings } = results
  parts.push(`<text x="20" y="${y + 12}" class="heading">fastify-encrypted-session benchmark${settings.quick ? ' (quick smoke run: not meaningful)' : ''}</text>`)
  y += 24
  parts.push(`<text x="20" y="${y + 10}" class="sub">${esc(`${machine.cpuModel} × ${machine.cores} cores · Node ${machine.node} · ${machine.platform} · ${results.date.slice(0, 10)} · commit ${machine.commit}`)}</text>`)
  y += 26
  if (results.http !== undefined) {
    const { http } = results
    const cell = (variant, route) => http.cells.find((c) => c.variant === variant && c.route === route)?.reqPerSec
    const bare = cell('bare', 'bare')
    const labels = { ...VARIANT_LABELS, ours: 'ours', 'secure-session': '@fastify/secure-session', iron: 'iron-session', 'node-fernet': 'node:crypto Fernet' }
    const cookieVariants = ['ours', ...COOKIE_PEERS]
    parts.push(legend(20, y + 8, cookieVariants, labels, `bare, no session: ${short(bare)}`))
    y += 16
    parts.push(panel({
      x: 20,
      y,
      width: width - 40,
      height: 300,
      title: `Session in the cookie: HTTP requests/s, median of ${settings.rounds} interleaved rounds (autocannon, ${settings.connections} connections, ${settings.duration}s per cell)`,
      yLabel: 'requests/s',
      groups: SESSION_ROUTES.map((route) => ({
        label: ROUTE_LABELS[route],
        bars: cookieVariants.map((v) => ({ key: v, value: cell(v, route) }))
      })),
      reference: { value: bare, label: 'bare' }
    }))
    y += 306
    const r = (group, name) => results.ratios?.find((x) => x.group === group && x.name === name)?.value
    const f = (v) => Number.isFinite(v) ? `${v.toFixed(2)}×` : 'n/a'
    const line = `ours ÷ secure-session: untouched ${f(r('http untouched', 'ours ÷ secure-session'))}, read ${f(r('http read', 'ours ÷ secure-session'))}, write ${f(r('http write', 'ours ÷ secure-session'))}` +
      ` · ours ÷ iron-session, write: ${f(r('http write', 'ours ÷ iron'))} · ours untouched ÷ bare: ${f(r('http untouched ÷ bare', 'ours untouched ÷ bare'))}`
    parts.push(`<text x="20" y="${y + 12}" class="sub">${esc(line)}</text>`)
    y += 28
    // The store variants on one redis-server and on the cluster: one panel each, every store route.
    const storePanel = (variants, labels, title) => {
      parts.push(legend(20, y + 8, variants, labels, `bare, no session: ${short(bare)}`))
      parts.push(panel({
        x: 20,
        y: y + 16,
        width: width - 40,
        height: 260,
        title,
        yLabel: 'requests/s',
        groups: STORE_ROUTES.map((route) => ({ label: ROUTE_LABELS[route], bars: variants.map((v) => ({ key: v, value: cell(v, route) })) })),
        reference: { value: bare, label: 'bare' }
      }))
      return y + 16 + 266
    }
    const stores = STORE_VARIANTS.filter((v) => !REDIS_CLUSTER_VARIANTS.includes(v) && http.cells.some((c) => c.variant === v))
    if (stores.length) {
      const storeLabels = { 'ours-memory': 'ours, MemoryStore', 'ours-redis': 'ours, RedisStore', 'ours-redis-io': 'ours, RedisStore on ioredis', 'ours-redis-plain': 'ours, RedisStore, encryptStore: false', 'session-redis': '@fastify/session + connect-redis' }
      y = storePanel(stores, storeLabels, 'Session in a store, an id in the cookie: HTTP requests/s (one session per connection; Redis on 127.0.0.1)')
      const storeLines = ['ours-redis', 'ours-redis-io', 'ours-redis-plain', 'ours-memory'].filter((v) => stores.includes(v) && stores.includes('session-redis')).map((v) =>
        `${v} ÷ @fastify/session + connect-redis: ${STORE_ROUTES.map((route) => `${route} ${f(r(`http ${route}, store`, `${v} ÷ session-redis`))}`).join(', ')}`)
      storeLines.push(`untouched ÷ bare: ${stores.map((v) => `${v} ${f(r('http untouched ÷ bare', `${v} untouched ÷ bare`))}`).join(', ')}`)
      y = subLines(parts, y, storeLines)
    }
    const clustered = REDIS_CLUSTER_VARIANTS.filter((v) => http.cells.some((c) => c.variant === v))
    if (clustered.length) {
      const clusterLabels = { 'ours-redis-cluster': 'ours, RedisStore (node-redis cluster)', 'ours-redis-cluster-io': 'ours, RedisStore (ioredis Cluster)', 'session-redis-cluster': '@fastify/session + connect-redis' }
      y = storePanel(clustered, clusterLabels, 'Session in a store on a 3-master Redis Cluster: HTTP requests/s (one session per connection; the nodes on 127.0.0.1)')
      const clusterLines = ['ours-redis-cluster', 'ours-redis-cluster-io'].filter((v) => clustered.includes(v) && clustered.includes('session-redis-cluster')).map((v) =>
        `${v} ÷ @fastify/session + connect-redis, both on the cluster: ${STORE_ROUTES.map((route) => `${route} ${f(r(`http ${route}, cluster`, `${v} ÷ session-redis-cluster`))}`).join(', ')}`)
      y = subLines(parts, y, clusterLines)
    }
    const readPath = ['ours', 'ours-noproxy', 'ours-cold', 'secure-session', 'node-fernet'].filter((v) => cell(v, 'read') !== undefined)
    if (readPath.some((v) => v === 'ours-cold' || v === 'ours-noproxy')) {
      const readLabels = { ours: 'ours (cache hit)', 'ours-noproxy': 'ours, no Proxy', 'ours-cold': 'ours, cacheSize 0', 'secure-session': '@fastify/secure-session', 'node-fernet': 'node:crypto Fernet' }
      parts.push(panel({
        x: 20,
        y,
        width: width - 40,
        height: 240,
        title: 'The read path (session read-only): the verified-token cache, a cold read (every request decrypts), Session without its Proxy',
        yLabel: 'requests/s',
        groups: readPath.map((v) => ({ label: readLabels[v], bars: [{ key: v, value: cell(v, 'read') }] })),
        reference: { value: bare, label: 'bare' }
      }))
      y += 246
      const ns = (build) => results.proxy?.results.find((c) => c.build === build && c.op === 'construct+get')?.nsPerOp
      y = subLines(parts, y, [
        `cold read: ours-cold ÷ secure-session ${f(r('http read, cold', 'ours-cold ÷ secure-session'))}, ÷ node:crypto Fernet ${f(r('http read, cold', 'ours-cold ÷ node-fernet'))}, ÷ ours with its cache ${f(r('http read, cold', 'ours-cold ÷ ours'))}`,
        `Proxy: ours ÷ ours-noproxy ${f(r('http read, Proxy', 'ours ÷ ours-noproxy'))}` +
          (Number.isFinite(ns('proxy')) ? `; new Session() + get('user'): ${ns('proxy').toFixed(0)} ns with the Proxy, ${ns('noproxy').toFixed(0)} ns without` : '')
      ])
    }
  }
  if (results.micro !== undefined) {
    const { micro } = results
    const batch = micro.config.inFlight
    const impls = ['ours', 'node-fernet', 'npm-fernet']
    parts.push(legend(20, y + 8, impls, { ours: 'ours (WebCrypto)', 'node-fernet': 'node:crypto Fernet', 'npm-fernet': 'npm fernet 0.4.0' }))
    y += 16
    const groups = []
    for (const op of ['encrypt', 'decrypt']) {
      for (const size of micro.config.sizes) {
        groups.push({
          label: `${op} ${size >= 1024 ? `${size / 1024} KB` : `${size} B`}`,
          bars: impls.map((impl) => ({ key: impl, value: micro.results.find((c) => c.impl === impl && c.op === op && c.size === size && c.batch === batch)?.opsPerSec }))
        })
      }
    }
    parts.push(panel({ x: 20, y, width: width - 40, height: 280, title: `Fernet micro: ops/s with ${batch} calls in flight (median of ${micro.config.rounds} rounds)`, yLabel: 'ops/s', groups }))
    y += 290
  }
  if (results.memory !== undefined) {
    const m = results.memory
    const mb = (b) => Number.isFinite(b) ? `${(b / 1048576).toFixed(1)} MiB` : 'n/a'
    y = subLines(parts, y, [
      `Memory, ours after ${m.requests.toLocaleString('en-US')} requests with distinct session tokens: heapUsed ${mb(m.after?.heapUsed)} (${mb(m.afterGc?.heapUsed)} after gc; ${mb(m.baseline?.heapUsed)} before), RSS ${mb(m.after?.rss)}`,
      ...(m.readOneCookieAfter ? [`then, on that server, read-only with one cookie: ${short(m.readOneCookieAfter.reqPerSec)} req/s`] : [])
    ])
  }
  if (results.memoryStore !== undefined) {
    const m = results.memoryStore
    const mb = (b) => Number.isFinite(b) ? `${(b / 1048576).toFixed(1)} MiB` : 'n/a'
    y = subLines(parts, y, [
      `Memory, ours with a MemoryStore after ${m.sessionsCreated.toLocaleString('en-US')} new sessions: store.size ${m.storeSizeAfter?.toLocaleString('en-US')}, ` +
        `heapUsed ${mb(m.after?.heapUsed)} (${mb(m.afterGc?.heapUsed)} after gc; ${mb(m.baseline?.heapUsed)} before), RSS ${mb(m.after?.rss)}`
    ])
  }
  const height = y + 10
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">
<style>
.heading { font-size: 17px; font-weight: 600; fill: #222 }
.sub { font-size: 12px; fill: #555 }
.title { font-size: 13px; font-weight: 600; fill: #333 }
.label { font-size: 11.5px; fill: #333 }
.tick { font-size: 10.5px; fill: #666 }
.value { font-size: 10px; fill: #333 }
.grid { stroke: #e4e4e4; stroke-width: 1 }
.axis { stroke: #999; stroke-width: 1 }
.ref { stroke: #555; stroke-width: 1.2; stroke-dasharray: 5 4 }
</style>
<rect width="100%" height="100%" fill="#fff"/>
${parts.join('\n')}
</svg>
`
}
