// Sends one request as raw bytes over a TCP socket to a server on loopback and returns the
// status code the server answers with. Node's own HTTP client refuses to send what these tests
// need to send (NUL bytes in a header, headers over the server's limit), so it is written here
// by hand: the point is to see what the server's HTTP parser does with them.
import { connect } from 'node:net'

export interface RawResponse {
  status: number
  head: string
  body: string
}

/**
 * Writes `GET path` with the given header lines (each "Name: value", sent as latin1 bytes, so
 * any code unit up to 0xFF goes on the wire as that one byte) and reads the answer until the
 * server closes the connection. Bounded by `timeoutMs`.
 */
export function rawRequest (port: number, path: string, headerLines: string[], timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port })
    const chunks: Buffer[] = []
    let settled = false
    const finish = (error?: Error): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      const text = Buffer.concat(chunks).toString('latin1')
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(text)
      // A server that refuses a request may close while we are still writing (EPIPE,
      // ECONNRESET); what counts is the status it sent before closing.
      if (match?.[1] !== undefined) {
        const split = text.indexOf('\r\n\r\n')
        resolve({ status: Number(match[1]), head: text.slice(0, split), body: split === -1 ? '' : text.slice(split + 4) })
      } else {
        reject(error ?? new Error(`no HTTP status line in ${JSON.stringify(text.slice(0, 200))}`))
      }
    }
    const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', (error) => finish(error))
    socket.on('close', () => finish())
    socket.on('connect', () => {
      const head = [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...headerLines, 'Connection: close', '', ''].join('\r\n')
      socket.write(Buffer.from(head, 'latin1'))
    })
  })
}
