import type { Pop3Command } from './command.ts'
import { AppError } from '../../../shared/errors.ts'
import { classifyMailServerError } from '../../provider-errors.ts'
import { responseCode, shortText } from '../errors.ts'

/**
 * USER and PASS (RFC 1939 section 7): for servers that take a password (custom providers). The
 * password only ever goes to the socket. A `-ERR` to either is a refused login.
 * @see https://www.rfc-editor.org/rfc/rfc1939#section-7
 */
export const userPass: Pop3Command<[user: string, password: string], void> = {
  name: 'USER/PASS',
  states: ['authorization'],
  async run(conn, user, password) {
    if (user.length === 0 || /[\x00\r\n]/.test(user) || /[\x00\r\n]/.test(password)) {
      throw new AppError(
        'pop3_invalid_argument',
        'POP3 user name or password is empty or contains a line break',
      )
    }
    const steps: Array<[line: string, label: string]> = [
      [`USER ${user}`, 'USER'],
      [`PASS ${password}`, 'PASS'],
    ]
    for (const [line, label] of steps) {
      conn.writeLine(line)
      const status = await conn.readLine()
      if (status.startsWith('+OK')) continue
      if (!status.startsWith('-ERR')) throw conn.unexpected(label, status)
      // A server echoing the password must not carry it into an error message.
      const text = shortText(password.length > 0 ? status.split(password).join('[redacted]') : status)
      const classified = classifyMailServerError(text, 'pop3')
      throw new AppError(
        'pop3_auth_failed',
        `POP3 server ${conn.endpoint} refused the login (${label}): ${text}`,
        {
          transient: classified?.transient ?? false,
          details: { user, responseCode: responseCode(text), classification: classified?.code },
        },
      )
    }
    conn.state = 'transaction'
    // RFC 2449 section 5: capabilities may differ once authenticated.
    conn.capabilities = undefined
  },
}
