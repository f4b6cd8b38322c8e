import type { Pop3Command } from './command.ts'
import { bodyLines } from './message-number.ts'
import { isAppError } from '../../../shared/errors.ts'

/**
 * CAPA (RFC 2449 section 5): the server's capabilities, one per line, `NAME arg arg...`. Names are
 * upper-cased (they are case-insensitive); arguments are kept as sent, e.g. `SASL XOAUTH2 PLAIN`.
 * A server without CAPA answers `-ERR`: that is an empty list, not an error. The answer is cached
 * until STLS or login, after which RFC 2449 section 5 lets it change.
 * @see https://www.rfc-editor.org/rfc/rfc2449#section-5
 */
export const capa: Pop3Command<[], Map<string, string[]>> = {
  name: 'CAPA',
  states: ['authorization', 'transaction'],
  async run(conn) {
    if (conn.capabilities) return conn.capabilities
    const capabilities = new Map<string, string[]>()
    try {
      const { body } = await conn.multilineCommand('CAPA', 'CAPA')
      for (const line of bodyLines(body)) {
        const [name, ...args] = line.trim().split(/\s+/)
        if (name) capabilities.set(name.toUpperCase(), args)
      }
    } catch (err) {
      if (!isAppError(err, 'pop3_command_failed')) throw err
    }
    conn.capabilities = capabilities
    return capabilities
  },
}
