// JSON as Python's json.loads reads it. Python's json.dumps writes float('nan') and the
// infinities as the bare words NaN, Infinity and -Infinity (allow_nan is on by default), which
// JSON.parse refuses: one such value in a Flask session would otherwise lose the whole session.
import secureJson from 'secure-json-parse'

const SECURE = { protoAction: 'error', constructorAction: 'error' } as const
// A string literal (kept as it is), or one of Python's words for the floats JSON cannot write.
// Outside strings JSON holds only punctuation, numbers, true, false and null, so a match of the
// second kind is always one of Python's words.
const LITERAL_OR_WORD = /"(?:[^"\\]|\\.)*"|-?Infinity|NaN/g
const WORDS: Readonly<Record<string, number>> = { NaN, Infinity, '-Infinity': -Infinity }

/**
 * Parses JSON text, refusing what could pollute prototypes (secure-json-parse); text that JSON
 * refuses only for Python's NaN, Infinity or -Infinity is read with those numbers, as Python
 * reads it. Throws a SyntaxError for anything else Python would not read.
 */
export function parsePythonJson (text: string): unknown {
  try {
    return secureJson.parse(text, undefined, SECURE)
  } catch (error) {
    if (!/NaN|Infinity/.test(text)) throw error
  }
  // Each word becomes a string no data can hold (a fresh random tag: a string in the text
  // cannot guess it), turned back into its number as the parse builds the value.
  const tag = `\u0000${Array.from(globalThis.crypto.getRandomValues(new Uint32Array(4)), (word) => word.toString(36)).join('')}:`
  const tagged = text.replace(LITERAL_OR_WORD, (match) => match.startsWith('"') ? match : JSON.stringify(tag + match))
  return secureJson.parse(tagged, (_key: string, value: unknown) => typeof value === 'string' && value.startsWith(tag) ? WORDS[value.slice(tag.length)] : value, SECURE)
}
