import type { Pop3Command } from './command.ts'
import { assertMessageNumber } from './message-number.ts'

/**
 * DELE (RFC 1939 section 5): marks a message deleted. The server removes it only when QUIT moves the
 * session to the UPDATE state; a session that ends any other way deletes nothing.
 * @see https://www.rfc-editor.org/rfc/rfc1939#section-5
 */
export const dele: Pop3Command<[msg: number], void> = {
  name: 'DELE',
  states: ['transaction'],
  async run(conn, msg) {
    assertMessageNumber(msg)
    await conn.simpleCommand(`DELE ${msg}`, `DELE ${msg}`)
  },
}
