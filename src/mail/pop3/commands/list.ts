import type { Pop3Command } from './command.ts'
import { protocolError, shortText } from '../errors.ts'
import { bodyLines } from './message-number.ts'

/**
 * LIST (RFC 1939 section 5), whole listing: `<msg> <octets>` per message not marked deleted. The size
 * counts CRLF line ends and is the size on the wire before dot-stuffing: a hint, not a promise.
 * @see https://www.rfc-editor.org/rfc/rfc1939#section-5
 */
export const list: Pop3Command<[], Array<{ msg: number; size: number }>> = {
  name: 'LIST',
  states: ['transaction'],
  async run(conn) {
    const { body } = await conn.multilineCommand('LIST', 'LIST')
    return bodyLines(body).map((line) => {
      const match = /^(\d+) +(\d+)(?: .*)?$/.exec(line)
      if (!match) {
        throw protocolError(`POP3 server ${conn.endpoint} sent a malformed LIST line: ${shortText(line)}`)
      }
      return { msg: Number(match[1]), size: Number(match[2]) }
    })
  },
}
