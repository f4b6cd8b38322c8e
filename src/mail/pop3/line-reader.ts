/**
 * Splits what a POP3 server sends into status lines and multi-line bodies.
 *
 * A multi-line response (RFC 1939 section 3) is a status line, then lines terminated by CRLF, then
 * a line holding a single "." (the terminator, CRLF "." CRLF). A line of the body that starts with
 * "." is sent with one more "." in front ("byte-stuffed"), which the client removes.
 *
 * The body decoder works on the socket's chunks as they come: it searches for LF "." with the
 * native `Buffer.indexOf`, keeps the bytes in between as views of the chunks, and copies them once,
 * at the end, into one Buffer. A 40 MB RETR therefore costs O(size), with no per-line work except
 * on the (rare) lines that start with ".", and the body keeps its bytes exactly, CRLF included.
 * @see https://www.rfc-editor.org/rfc/rfc1939#section-3
 */

const LF = 0x0a
const CR = 0x0d
const DOT = 0x2e
const LF_DOT = Buffer.from('\n.', 'latin1')
const EMPTY = Buffer.alloc(0)

/**
 * RFC 2449 section 4 limits a response line to 512 octets; SASL challenges and chatty servers go
 * beyond it, so the limit here is generous. It only stops a server that never sends a line end.
 */
export const MAX_LINE_BYTES = 64 * 1024

/** Thrown by the reader when the server breaks the framing; the connection turns it into an AppError. */
export class Pop3FramingError extends Error {}

/** Decodes one dot-stuffed multi-line body, fed chunk by chunk. */
export class DotBodyDecoder {
  private parts: Buffer[] = []
  private length = 0
  /** True when the next byte fed is at the start of a line (the body starts at one). */
  private atLineStart = true
  /** At most the 2 bytes of a line start (".", ".\r") whose meaning depends on bytes not yet received. */
  private carry: Buffer = EMPTY
  private finished = false

  get done(): boolean {
    return this.finished
  }

  /** Bytes of the decoded body so far. */
  get size(): number {
    return this.length
  }

  /**
   * Feeds a chunk. Returns `undefined` while the body goes on; once the terminator is seen, returns
   * the bytes that followed it (possibly empty): they belong to the next response.
   */
  feed(chunk: Buffer): Buffer | undefined {
    if (this.finished) return chunk
    // The carry is only ever a line start of 1 or 2 bytes, so this copy happens only when a line
    // starting with "." straddles two chunks.
    const data = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk
    this.carry = EMPTY
    let emitFrom = 0
    let searchFrom = 0
    let lineStart = this.atLineStart ? 0 : -1
    for (;;) {
      let dot: number
      if (lineStart === 0 && data.length > 0 && data[0] === DOT) {
        dot = 0
      } else {
        const hit = data.indexOf(LF_DOT, searchFrom)
        if (hit < 0) break
        dot = hit + 1
      }
      lineStart = -1
      // data[dot] is a "." at the start of a line: the terminator (".\r\n") or a stuffed dot.
      if (dot + 1 >= data.length || (data[dot + 1] === CR && dot + 2 >= data.length)) {
        this.emit(data, emitFrom, dot)
        this.carry = Buffer.from(data.subarray(dot))
        this.atLineStart = true
        return undefined
      }
      if (data[dot + 1] === CR && data[dot + 2] === LF) {
        this.emit(data, emitFrom, dot)
        this.finished = true
        return data.subarray(dot + 3)
      }
      // RFC 1939 section 3: a line starting with "." that is not the terminator has its first "."
      // removed. A bare ".\n" (no CR) is treated the same way rather than as the end of the body.
      this.emit(data, emitFrom, dot)
      emitFrom = dot + 1
      searchFrom = dot + 1
    }
    this.emit(data, emitFrom, data.length)
    this.atLineStart = data.length > 0 ? data[data.length - 1] === LF : this.atLineStart
    return undefined
  }

  /** The decoded body: one copy of every byte, made once. */
  result(): Buffer {
    if (!this.finished) throw new Pop3FramingError('The multi-line response is not complete')
    const body = this.parts.length === 1 ? Buffer.from(this.parts[0]) : Buffer.concat(this.parts, this.length)
    this.parts = []
    return body
  }

  private emit(data: Buffer, from: number, to: number): void {
    if (to > from) {
      this.parts.push(data.subarray(from, to))
      this.length += to - from
    }
  }
}

/**
 * Buffers what the server sent and hands out, on request, the next status line or the next
 * multi-line body. Synchronous and socket-free, so it can be tested with any chunking.
 */
export class Pop3ResponseReader {
  private inbox: Buffer = EMPTY
  private body: DotBodyDecoder | undefined

  /** Bytes received and not yet handed out (the part of a body being decoded is not counted). */
  get buffered(): number {
    return this.inbox.length
  }

  /** True while a body is being decoded. */
  get readingBody(): boolean {
    return this.body !== undefined
  }

  push(chunk: Buffer): void {
    if (this.body && !this.body.done && this.inbox.length === 0) {
      const rest = this.body.feed(chunk)
      if (rest && rest.length > 0) this.inbox = rest
      return
    }
    this.inbox = this.inbox.length === 0 ? chunk : Buffer.concat([this.inbox, chunk])
    if (this.body && !this.body.done) this.drainIntoBody()
  }

  /**
   * The next line without its line end (CRLF, or a bare LF from a sloppy server), or `undefined`
   * when no complete line has arrived yet. Throws when a line grows past MAX_LINE_BYTES.
   */
  nextLine(): string | undefined {
    if (this.body) throw new Pop3FramingError('A status line was requested while a body is being read')
    const lf = this.inbox.indexOf(LF)
    if (lf < 0) {
      if (this.inbox.length > MAX_LINE_BYTES) {
        throw new Pop3FramingError(`The server sent more than ${MAX_LINE_BYTES} bytes without a line end`)
      }
      return undefined
    }
    const end = lf > 0 && this.inbox[lf - 1] === CR ? lf - 1 : lf
    const line = this.inbox.toString('utf8', 0, end)
    this.inbox = lf + 1 === this.inbox.length ? EMPTY : this.inbox.subarray(lf + 1)
    return line
  }

  /** Starts decoding a multi-line body (call right after its +OK status line). */
  beginBody(): void {
    if (this.body) throw new Pop3FramingError('A body is already being read')
    this.body = new DotBodyDecoder()
    this.drainIntoBody()
  }

  /** The complete body, or `undefined` if its terminator has not arrived yet. */
  takeBody(): Buffer | undefined {
    if (!this.body) throw new Pop3FramingError('No body is being read')
    if (!this.body.done) return undefined
    const body = this.body.result()
    this.body = undefined
    return body
  }

  private drainIntoBody(): void {
    if (!this.body || this.inbox.length === 0) return
    const data = this.inbox
    this.inbox = EMPTY
    const rest = this.body.feed(data)
    if (rest && rest.length > 0) this.inbox = rest
  }
}
