import type { Pop3Command } from './command.ts'
import { protocolError, shortText } from '../errors.ts'
import { bodyLines } from './message-number.ts'

/**
 * UIDL (RFC 1939 section 7), whole listing: `<msg> <uid>` per message not marked deleted. A UID is
 * 1 to 70 characters from 0x21 to 0x7E and stays the same across sessions, which is what makes the
 * UIDL set difference of DESIGN.md exactly-once. Anything else is a protocol error, not a guess.
 * @see https://www.rfc-editor.org/rfc/rfc1939#section-7
 */
export const uidl: Pop3Command<[], Array<{ msg: number; uid: string }>> = {
  name: 'UIDL',
  states: ['transaction'],
  async run(conn) {
    const { body } = await conn.multilineCommand('UIDL', 'UIDL')
    return bodyLines(body).map((line) => {
      const match = /^(\d+) +([\x21-\x7e]{1,70}) *$/.exec(line)
      if (!match) {
        throw protocolError(`POP3 server ${conn.endpoint} sent a malformed UIDL line: ${shortText(line)}`)
      }
      return { msg: Number(match[1]), uid: match[2] }
    })
  },
}
