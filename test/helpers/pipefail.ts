// Finds shell pipes whose reader may exit before its writer is done: `grep -q` (or -m, -l, -L)
// stops at its first match, `head` after its lines. The writer then dies of SIGPIPE (141), and
// under `set -o pipefail` that fails the whole pipeline although the match was found: a CI flake
// that comes and goes with timing and buffer sizes (issue 11). grep's early exits are reported
// everywhere (a script can gain pipefail later, and `grep ... >/dev/null` or grepping a saved file
// costs nothing); `head` only where pipefail is on. Shell files are read with enough of the shell's
// grammar (quotes, comments, $(...), heredocs) that a quoted `|` or a comment is not a pipe;
// TypeScript and JavaScript files are parsed, and each string literal is read as shell.
import ts from 'typescript'

export interface Finding {
  file: string
  line: number
  /** The physical line the pipe is on. */
  text: string
  /** The reader, from the pipe to the end of its command, e.g. `| grep -Eq 'y'`. */
  reader: string
  reason: string
}

const GREP = /^(?:e|f|z|zE|zF)?grep$/
// grep options that take a value: as a separate word it is not an option of its own.
const GREP_VALUE_OPTIONS = new Set(['e', 'f', 'm', 'A', 'B', 'C', 'd', 'D'])
const GREP_EARLY_LONG = /^--(?:quiet|silent|max-count(?:=.*)?|files-with(?:out)?-match(?:es)?)$/
const GREP_VALUE_LONG = /^--(?:regexp|file|max-count|after-context|before-context|context|directories|devices|label|include|exclude|exclude-dir|color|colour|binary-files)$/

interface Lexed {
  /** For each character: is it shell code (true) or quoted text, a comment or a heredoc body? */
  code: boolean[]
  /** Quoted strings in code, as [first, end) of their content: `sh -c '...'` runs one as shell. */
  quoted: Array<[number, number]>
}

/** Marks which characters of a shell text are code, following quotes, comments and heredocs. */
function lex (text: string): Lexed {
  const code = new Array<boolean>(text.length).fill(false)
  // Contexts: 'code' (top level, $(...) or `...`), 'single', 'double', 'param' (${...}).
  type Context = { kind: 'code', closer: ')' | '`' | '' , depth: number } | { kind: 'single' } | { kind: 'double' } | { kind: 'param', depth: number }
  const stack: Context[] = [{ kind: 'code', closer: '', depth: 0 }]
  const heredocs: Array<{ word: string, strip: boolean }> = []
  const quoted: Array<[number, number]> = []
  let quoteStart = 0
  let i = 0
  while (i < text.length) {
    const ch = text[i] as string
    const top = stack[stack.length - 1] as Context
    if (ch === '\n' && heredocs.length > 0 && top.kind === 'code') {
      // Heredoc bodies start on the next line and are data, not shell: skip to each terminator.
      i++
      for (const { word, strip } of heredocs.splice(0)) {
        while (i < text.length) {
          const end = text.indexOf('\n', i)
          const line = text.slice(i, end === -1 ? text.length : end)
          i = end === -1 ? text.length : end + 1
          if ((strip ? line.replace(/^\t+/, '') : line) === word) break
        }
      }
      continue
    }
    if (top.kind === 'single') {
      if (ch === "'") {
        stack.pop()
        if (stack.length === 1) quoted.push([quoteStart, i])
      }
      i++
      continue
    }
    if (top.kind === 'double') {
      if (ch === '\\') { i += 2; continue }
      if (ch === '"') {
        stack.pop()
        if (stack.length === 1) quoted.push([quoteStart, i])
        i++
        continue
      }
      if (ch === '$' && text[i + 1] === '(') { stack.push({ kind: 'code', closer: ')', depth: 0 }); i += 2; continue }
      if (ch === '$' && text[i + 1] === '{') { stack.push({ kind: 'param', depth: 0 }); i += 2; continue }
      if (ch === '`') { stack.push({ kind: 'code', closer: '`', depth: 0 }); i++; continue }
      i++
      continue
    }
    if (top.kind === 'param') {
      if (ch === '\\') { i += 2; continue }
      if (ch === '{') top.depth++
      else if (ch === '}') {
        if (top.depth === 0) stack.pop()
        else top.depth--
      } else if (ch === "'") stack.push({ kind: 'single' })
      else if (ch === '"') stack.push({ kind: 'double' })
      i++
      continue
    }
    // Shell code.
    if (ch === '\\') {
      // An escaped character is literal; an escaped newline joins two lines into one command.
      i += 2
      continue
    }
    if (ch === "'" || ch === '"') {
      stack.push({ kind: ch === "'" ? 'single' : 'double' })
      i++
      quoteStart = i
      continue
    }
    if (ch === '$' && text[i + 1] === '{') { stack.push({ kind: 'param', depth: 0 }); i += 2; continue }
    if (ch === '$' && text[i + 1] === '(') { stack.push({ kind: 'code', closer: ')', depth: 0 }); code[i] = true; i += 2; continue }
    if (ch === '$' && text[i + 1] === "'") { stack.push({ kind: 'single' }); i += 2; quoteStart = i; continue }
    if (ch === '#' && (i === 0 || /[\s;&|(]/.test(text[i - 1] as string))) {
      const end = text.indexOf('\n', i)
      i = end === -1 ? text.length : end
      continue
    }
    if (ch === '<' && text[i + 1] === '<' && text[i + 2] !== '<') {
      const match = /^<<(-?)[ \t]*(['"]?)([A-Za-z_][A-Za-z0-9_]*)\2/.exec(text.slice(i))
      if (match !== null) {
        heredocs.push({ word: match[3] as string, strip: match[1] === '-' })
        code.fill(true, i, i + match[0].length)
        i += match[0].length
        continue
      }
    }
    if (top.closer === ')' && ch === '(') top.depth++
    if (top.closer === ')' && ch === ')') {
      if (top.depth === 0) {
        code[i] = true
        stack.pop()
        i++
        continue
      }
      top.depth--
    }
    if (top.closer === '`' && ch === '`') { code[i] = true; stack.pop(); i++; continue }
    if (top.closer !== '`' && ch === '`') { stack.push({ kind: 'code', closer: '`', depth: 0 }); code[i] = true; i++; continue }
    code[i] = true
    i++
  }
  return { code, quoted }
}

/** The words of a command: whitespace-separated, quotes removed (good enough for options). */
function words (command: string): string[] {
  return (command.match(/(?:'[^']*'|"(?:\\.|[^"])*"|\\.|[^\s'"\\])+/g) ?? [])
    .map((word) => word.replace(/^'(.*)'$/s, '$1').replace(/^"(.*)"$/s, '$1'))
}

/** Why this reader may exit early, or undefined. */
function earlyExit (command: string, pipefail: boolean): string | undefined {
  const all = words(command)
  // Skip `VAR=value` prefixes and wrappers that run the next word as the command.
  let start = 0
  while (start < all.length && (/^[A-Za-z_][A-Za-z0-9_]*=/.test(all[start] as string) || ['command', 'env', 'exec', 'nice', 'stdbuf'].includes(all[start] as string))) start++
  const name = (all[start] ?? '').split('/').pop() ?? ''
  const args = all.slice(start + 1)
  if (name === 'head') return pipefail ? 'head exits after its lines, and under pipefail the writer\'s SIGPIPE fails the pipeline' : undefined
  if (!GREP.test(name)) return undefined
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string
    if (arg === '--') break
    if (GREP_EARLY_LONG.test(arg)) return `grep ${arg} exits at its first match, and the writer dies of SIGPIPE (a failure under pipefail)`
    if (GREP_VALUE_LONG.test(arg)) { i++; continue }
    if (!/^-[A-Za-z0-9]/.test(arg)) continue
    for (const letter of arg.slice(1)) {
      if ('qmlL'.includes(letter)) return `grep -${letter} exits at its first match, and the writer dies of SIGPIPE (a failure under pipefail)`
      if (GREP_VALUE_OPTIONS.has(letter)) {
        // The value is the rest of this word, or the next word.
        if (arg.endsWith(letter)) i++
        break
      }
      if (/[0-9]/.test(letter)) break
    }
  }
  return undefined
}

/**
 * Findings in a shell text. `firstLine` is the line number of the text's first line in its file;
 * `pipefail` says whether pipefail is on (by default: whether the text's code sets it).
 */
export function scanShell (file: string, text: string, options: { firstLine?: number, pipefail?: boolean } = {}): Finding[] {
  const { code, quoted } = lex(text)
  const codeText = [...text].map((ch, i) => code[i] === true ? ch : (ch === '\n' ? '\n' : ' ')).join('')
  const pipefail = options.pipefail ?? /\bpipefail\b/.test(codeText)
  const lines = text.split('\n')
  const findings: Finding[] = []
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== '|' || code[i] !== true) continue
    // `||` is "or", not a pipe; `|&` pipes stderr too.
    if (text[i + 1] === '|' || (text[i - 1] === '|' && code[i - 1] === true)) continue
    let start = i + 1
    if (text[start] === '&') start++
    // The reader runs to the end of its command: a newline, ; & | ) or ` in code.
    let end = start
    while (end < text.length) {
      const ch = text[end] as string
      if (code[end] === true && /[;&|)`]/.test(ch)) break
      if (code[end] === true && ch === '\n' && text.slice(start, end).trim() !== '') break
      end++
    }
    const command = text.slice(start, end).replace(/\\\n/g, ' ')
    const reason = earlyExit(command, pipefail)
    if (reason === undefined) continue
    const line = text.slice(0, i).split('\n').length
    findings.push({
      file,
      line: (options.firstLine ?? 1) + line - 1,
      text: (lines[line - 1] ?? '').trim(),
      reader: `|${text.slice(i + 1, end)}`.replace(/\s+/g, ' ').trim(),
      reason
    })
  }
  // A quoted argument of -c (`bash -o pipefail -c '...'`) is a script of its own.
  for (const [first, end] of quoted) {
    const before = codeText.slice(text.lastIndexOf('\n', first - 2) + 1, first - 1)
    if (!/(?:^|\s)-[A-Za-z]*c\s*$/.test(before)) continue
    const inner = scanShell(file, text.slice(first, end), {
      firstLine: (options.firstLine ?? 1) + text.slice(0, first).split('\n').length - 1,
      pipefail: pipefail || /\bpipefail\b/.test(before) || undefined
    })
    findings.push(...inner)
  }
  return findings.sort((a, b) => a.line - b.line)
}

/** Findings in the string literals of a TypeScript or JavaScript file, each read as shell. */
export function scanScriptStrings (file: string, source: string): Finding[] {
  const kind = /\.[cm]?tsx?$/.test(file) ? ts.ScriptKind.TS : ts.ScriptKind.JS
  const sourceFile = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true, kind)
  const pipefail = /\bpipefail\b/.test(source)
  const findings: Finding[] = []
  const visit = (node: ts.Node): void => {
    let text: string | undefined
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) text = node.text
    else if (ts.isTemplateExpression(node)) {
      // A substitution stands for one word.
      text = node.head.text + node.templateSpans.map((span) => 'X' + span.literal.text).join('')
    }
    if (text !== undefined && text.includes('|')) {
      const firstLine = sourceFile.getLineAndCharacterOfPosition(node.getStart(sourceFile)).line + 1
      findings.push(...scanShell(file, text, { firstLine, pipefail }))
    }
    ts.forEachChild(node, visit)
  }
  visit(sourceFile)
  return findings
}

export function formatFinding (finding: Finding): string {
  return `${finding.file}:${finding.line}: \`${finding.reader}\`: ${finding.reason} (line: ${finding.text})`
}
