import type { Pop3Command } from './command.ts'
import { AppError } from '../../../shared/errors.ts'
import { shortText } from '../errors.ts'

/**
 * STLS (RFC 2595 section 4): upgrades the session to TLS; only in the AUTHORIZATION state, and
 * only once. A server that refuses it is a settings problem (pick `tls` or another port), so the
 * session is not continued in the clear.
 * @see https://www.rfc-editor.org/rfc/rfc2595#section-4
 */
export const stls: Pop3Command<[], void> = {
  name: 'STLS',
  states: ['authorization'],
  async run(conn) {
    if (conn.isSecure) {
      throw new AppError('pop3_invalid_state', 'POP3 STLS was sent on a connection that is already TLS')
    }
    conn.writeLine('STLS')
    const status = await conn.readLine()
    if (status.startsWith('-ERR')) {
      conn.close()
      throw new AppError('pop3_tls_failed', `POP3 server ${conn.endpoint} refused STLS: ${shortText(status)}`)
    }
    if (!status.startsWith('+OK')) throw conn.unexpected('STLS', status)
    await conn.upgradeToTls()
  },
}
