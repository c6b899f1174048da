// Session JSON read as Python's json.loads reads it: NaN, Infinity and -Infinity outside
// strings are numbers; everything else JSON refuses, and every forbidden key, is still refused.
// test/flask-seed.test.ts reads what a real Flask app writes.
import t from 'tap'
import { parseSessionJson } from '../lib/backends/backend.js'
import { parsePythonJson } from '../lib/backends/python-json.js'

t.test('Python\'s words for the floats JSON has none for', async (t) => {
  t.same(parsePythonJson('{"a": NaN, "b": [Infinity, -Infinity], "c": {"d": NaN}}'), { a: NaN, b: [Infinity, -Infinity], c: { d: NaN } })
  t.same(parsePythonJson('{"NaN": "Infinity", "x\\"NaN": NaN}'), { NaN: 'Infinity', 'x"NaN': NaN }, 'inside strings, keys or values, escaped quotes included, the words stay text')
  t.same(parsePythonJson('{"a": 1}'), { a: 1 }, 'plain JSON as JSON.parse reads it')
  for (const text of ['{"a": nan}', '{"a": -NaN}', '{"a": 1NaN}', '{"a": NaN', '{"a": +Infinity}', '{"a": "NaN}']) {
    t.throws(() => parsePythonJson(text), SyntaxError, `refused as Python refuses it: ${text}`)
  }
  t.throws(() => parsePythonJson('{"a": }'), SyntaxError, 'broken JSON without the words')
})

t.test('the session reader', async (t) => {
  t.same(parseSessionJson('{"ratio": NaN}'), { ratio: NaN })
  t.equal(parseSessionJson('{"__proto__": {"x": 1}, "a": NaN}'), 'forbidden-key', 'a forbidden key is refused with the words too')
  t.equal(parseSessionJson('{"a": {"constructor": {"prototype": {}}}, "b": Infinity}'), 'forbidden-key')
  t.equal(parseSessionJson('[NaN]'), 'not-object')
  t.equal(parseSessionJson('{"a": NaN,}'), 'not-json')
  t.equal(parseSessionJson('NaN'), 'not-object', 'a bare NaN is a number, not a session')
})

