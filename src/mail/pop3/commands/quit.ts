import type { Pop3Command } from './command.ts'
import { AppError, isAppError } from '../../../shared/errors.ts'

/**
 * QUIT (RFC 1939 sections 4 and 6). From TRANSACTION it moves the session to UPDATE, where the server
 * removes the messages marked with DELE; only its `+OK` confirms that. A `-ERR` means some were not
 * removed (`pop3_update_failed`); a connection lost before the answer leaves it unknown
 * (`pop3_connection_closed`). Either way the UIDL set difference of the next session sorts it out.
 * @see https://www.rfc-editor.org/rfc/rfc1939#section-6
 */
export const quit: Pop3Command<[], void> = {
  name: 'QUIT',
  states: ['authorization', 'transaction'],
  async run(conn) {
    const updating = conn.state === 'transaction'
    if (updating) conn.state = 'update'
    try {
      await conn.simpleCommand('QUIT', 'QUIT')
    } catch (err) {
      conn.close()
      if (!updating || !isAppError(err, 'pop3_command_failed')) throw err
      throw new AppError(
        'pop3_update_failed',
        `POP3 server ${conn.endpoint} did not remove every deleted message: ${err.message}`,
        { transient: true, cause: err },
      )
    }
    conn.end()
  },
}
