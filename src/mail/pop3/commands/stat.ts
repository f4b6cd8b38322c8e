import type { Pop3Command } from './command.ts'
import { protocolError, shortText } from '../errors.ts'

/**
 * STAT (RFC 1939 section 5): `+OK <count> <octets>` for the maildrop, messages marked deleted excluded.
 * @see https://www.rfc-editor.org/rfc/rfc1939#section-5
 */
export const stat: Pop3Command<[], { count: number; size: number }> = {
  name: 'STAT',
  states: ['transaction'],
  async run(conn) {
    const text = await conn.simpleCommand('STAT', 'STAT')
    const match = /^(\d+)\s+(\d+)(?:\s|$)/.exec(text)
    if (!match) throw protocolError(`POP3 server ${conn.endpoint} answered STAT with: +OK ${shortText(text)}`)
    return { count: Number(match[1]), size: Number(match[2]) }
  },
}
