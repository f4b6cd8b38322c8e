import type { Pop3Command } from './command.ts'
import { assertMessageNumber } from './message-number.ts'

/**
 * RETR (RFC 1939 section 5): the whole message, byte for byte as the server holds it, CRLF line ends
 * kept, dot-stuffing undone and the terminating "." line removed (see line-reader.ts).
 * @see https://www.rfc-editor.org/rfc/rfc1939#section-5
 */
export const retr: Pop3Command<[msg: number], Buffer> = {
  name: 'RETR',
  states: ['transaction'],
  async run(conn, msg) {
    assertMessageNumber(msg)
    const { body } = await conn.multilineCommand(`RETR ${msg}`, `RETR ${msg}`)
    return body
  },
}
