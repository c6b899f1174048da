// No pipe into a reader that exits early (`grep -q`, `head` under pipefail) in CI, the scripts or
// the tests' shell strings: the writer dies of SIGPIPE and pipefail fails the line at random
// (issue 11; pack-check.sh once did `tar -tzf ... | grep -Eq ...`). First the detector is shown
// to catch the pattern and to leave alone what is not it, then the project is scanned.
import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { type Finding, formatFinding, scanScriptStrings, scanShell } from './helpers/pipefail.js'

const root = join(import.meta.dirname, '..')
const self = relative(root, import.meta.filename)

const lines = (findings: Finding[]): number[] => findings.map((finding) => finding.line)

t.test('the detector catches a pipe into an early-exiting reader', async (t) => {
  // [what, script, line of the finding]; every script runs under pipefail unless it says not.
  const bad: Array<[string, string, number]> = [
    ['tar into grep -Eq', "tar -tzf x | grep -Eq 'y'", 1],
    ['the old pack-check line', `tar -tzf "$work/$tarball" | grep -Eq '^package/dist/esm/index.d.ts$' || { echo 'types missing from the tarball' >&2; exit 1; }`, 1],
    ['the old pack-check if, with a quoted alternation', `if tar -tzf "$work/$tarball" | grep -Eq '^package/(test|bench|demo|lib|node_modules)/'; then\n  exit 1\nfi`, 1],
    ['no space after the pipe', 'npm ls |grep -q fastify', 1],
    ['--quiet', 'cmd | grep --quiet x', 1],
    ['--silent', 'cmd | grep --silent x', 1],
    ['-m1', 'cmd | grep -m1 x', 1],
    ['-m 1', 'cmd | grep -m 1 x', 1],
    ['--max-count=1', 'cmd | grep --max-count=1 x', 1],
    ['-l on standard input', 'echo "$(ls | grep -l x)"', 1],
    ['q after other letters', 'cmd 2>&1 | grep -iEq x', 1],
    ['an environment prefix', 'cmd 2>&1 | LC_ALL=C grep -q x', 1],
    ['a path to grep', 'cmd | /usr/bin/grep -q x', 1],
    ['egrep', 'cmd | egrep -q x', 1],
    ['an option after the pattern (GNU grep reads it)', 'cmd | grep x -q', 1],
    ['|&', 'cmd |& grep -q x', 1],
    ['inside $(...) in double quotes', 'tarball="$(npm pack | head -n 1)"', 1],
    ['inside backquotes', 'v=`cmd | head -1`', 1],
    ['from a subshell', '(cd dir && ls) | grep -qx name', 1],
    ['a continued line', 'cmd --long \\\n  | grep -q x', 2],
    ['a pipe at the end of a line', 'cmd |\n  grep -q x', 1],
    ['a continued grep', 'cmd | grep \\\n  -q x', 1],
    ['after a heredoc', "cat > x.js <<'JS'\nconsole.log(1)\nJS\ncmd | grep -q x", 4],
    ['bash -c with its own pipefail', "bash -o pipefail -c 'npm ls | head -1'", 1],
    ['grep -q without pipefail (it may come later)', 'set -eu\ncmd | grep -q x', 2]
  ]
  for (const [what, script, line] of bad) {
    const pipefail = !script.startsWith('set -eu')
    const findings = scanShell('sample.sh', (pipefail ? 'set -euo pipefail\n' : '') + script)
    t.same(lines(findings), [line + (pipefail ? 1 : 0)], `${what}: ${script.replace(/\n/g, '\\n')}`)
  }
  const [finding] = scanShell('sample.sh', "set -euo pipefail\ntar -tzf x | grep -Eq 'y'")
  t.match(finding, { file: 'sample.sh', line: 2, text: "tar -tzf x | grep -Eq 'y'", reader: "| grep -Eq 'y'" }, 'a finding names the file, the line and the reader')
  t.match(formatFinding(finding as Finding), /^sample\.sh:2: .*grep -q exits at its first match/, 'and says why')

  const source = [
    "import { execSync } from 'node:child_process'",
    '// tar | grep -q in a comment is not code',
    'execSync(`tar -tzf ${file} | grep -Eq \'^package/\'`)',
    "execSync('set -o pipefail; npm ls\\n  | head -1')"
  ].join('\n')
  t.same(lines(scanScriptStrings('sample.ts', source)), [3, 5], 'in TypeScript: template and string literals, with their lines')
})

t.test('the detector leaves other pipes, comments and quoted text alone', async (t) => {
  const good: Array<[string, string]> = [
    ['|| is not a pipe', 'cmd || grep -q x file'],
    ['grep of a file', "grep -Eq 'y' \"$work/contents.txt\""],
    ['a saved listing', 'tar -tzf x > list; grep -q y list'],
    ['grep that reads everything', 'cmd | grep -E y >/dev/null'],
    ['q as the pattern', 'cmd | grep -v q'],
    ['-q as the pattern of -e', 'cmd | grep -e -q'],
    ['-m in a value', 'cmd | grep -A 3 -e m'],
    ['tail reads everything', 'npm pack | tail -n 1'],
    ['wc', 'x=$(cmd | wc -l)'],
    ['a comment', '# never `tar | grep -q` under pipefail'],
    ['a comment after code', 'echo hi # tar | grep -q'],
    ['single-quoted text', "echo 'a | grep -q b'"],
    ['double-quoted text', 'echo "a | head"'],
    ['an alternation in a quoted pattern', "grep -Eq '^package/(test|head)/' file"],
    ['parameter expansion', 'n=${#arr[@]}; echo "${x//a|b/c}"'],
    ['a heredoc body is not shell', "cat > x.js <<'JS'\nfoo | grep -q bar\nconst y = a | head\nJS"],
    ['an indented heredoc body', 'cat <<-EOF\n\tfoo | grep -q bar\n\tEOF'],
    ['a multi-line quoted script for node', "npm view x --json | node -e '\n  const a = b | head\n' arg"]
  ]
  for (const [what, script] of good) {
    t.same(scanShell('sample.sh', 'set -euo pipefail\n' + script), [], `${what}: ${script.replace(/\n/g, '\\n')}`)
  }
  t.same(scanShell('sample.sh', 'cmd | head -1'), [], 'head without pipefail')
  t.same(scanScriptStrings('sample.ts', "const re = /a|head/\nconst s = 'x || grep -q y'\n// cmd | grep -q x\n"), [], 'in TypeScript: a regex, ||, a comment')
})

function filesIn (dir: string, pattern: RegExp, skip: RegExp = /^$/): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .map((name) => join(dir, name))
    .filter((path) => pattern.test(path) && !skip.test(path))
    .sort()
}

t.test('CI, the scripts and the tests pipe into no early-exiting reader', async (t) => {
  const shell = ['.ci/run', ...filesIn('scripts', /\.sh$/)]
  // This file's samples are meant to match.
  const scripts = [...filesIn('scripts', /\.[cm]?[jt]s$/), ...filesIn('bench', /\.[cm]?[jt]s$/, /^bench\/results\//), ...filesIn('test', /\.[cm]?[jt]s$/), ...filesIn('demo', /\.[cm]?[jt]s$/)]
    .filter((path) => path !== self)
  t.ok(shell.includes('scripts/pack-check.sh') && shell.includes('scripts/node-versions.sh'), `shell files scanned: ${shell.join(', ')}`)
  t.ok(scripts.includes('test/package.test.ts') && scripts.includes('test/helpers/python.ts') && scripts.includes('test/fixtures/misbehaving-server.mjs') && scripts.includes('demo/server.js'), `${scripts.length} script files scanned for shell strings`)

  const findings = [
    ...shell.flatMap((path) => scanShell(path, readFileSync(join(root, path), 'utf8'))),
    ...scripts.flatMap((path) => scanScriptStrings(path, readFileSync(join(root, path), 'utf8')))
  ]
  t.same(findings.map(formatFinding), [], 'grep the output saved to a file, or use a reader that reads all its input')
})
