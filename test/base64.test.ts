import t from 'tap'
import { randomBytes } from 'node:crypto'
import { decodedLength, selectCodec } from '../lib/fernet/base64.js'

t.test('the Buffer and the atob/btoa codecs agree', async (t) => {
  const nodeCodec = selectCodec({ Buffer })
  const webCodec = selectCodec({})
  t.not(nodeCodec, webCodec)
  for (const size of [0, 1, 2, 3, 31, 32, 33, 100, 0x8000 * 2 + 7]) {
    const bytes = new Uint8Array(randomBytes(size))
    const text = nodeCodec.encode(bytes)
    t.equal(webCodec.encode(bytes), text, `encode ${size} bytes`)
    t.equal(text.length % 4, 0, 'padded')
    t.notMatch(text, /[+/]/, 'url-safe letters')
    t.same(webCodec.decode(text), bytes, `web decode ${size} bytes`)
    t.same(new Uint8Array(nodeCodec.decode(text)), bytes, `node decode ${size} bytes`)
    t.same(webCodec.decode(text.replace(/=+$/, '')), bytes, 'web decode without padding')
  }
  const view = new Uint8Array(randomBytes(20)).subarray(5, 15)
  t.equal(nodeCodec.encode(view), webCodec.encode(view), 'views with an offset')
  t.same(webCodec.decode('-_-_'), nodeCodec.decode('+/+/'), 'both decode both alphabets')
})

t.test('decodedLength accepts only well-formed base64', async (t) => {
  t.equal(decodedLength('', false), 0)
  t.equal(decodedLength('AAAA', false), 3)
  t.equal(decodedLength('AAA', false), 2)
  t.equal(decodedLength('AAA=', false), 2)
  t.equal(decodedLength('AA', false), 1)
  t.equal(decodedLength('AA==', false), 1)
  t.equal(decodedLength('-_-_', false), 3)
  t.equal(decodedLength('+/+/', false), -1, 'standard letters refused in url-safe mode')
  t.equal(decodedLength('+/+/', true), 3, 'standard letters allowed for keys')
  for (const bad of ['A', 'AAAAA', 'AA=', 'AAA==', 'AAAA=', 'AA===', 'A=AA', 'AAAA\n', ' AAAA', 'AA%A', 'AAAA====']) {
    t.equal(decodedLength(bad, false), -1, `refuses ${JSON.stringify(bad)}`)
  }
})
