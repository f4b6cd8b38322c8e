import type { Pop3Command } from './command.ts'

/**
 * NOOP (RFC 1939 section 5): keeps the session alive and checks that the server still answers.
 * @see https://www.rfc-editor.org/rfc/rfc1939#section-5
 */
export const noop: Pop3Command<[], void> = {
  name: 'NOOP',
  states: ['transaction'],
  async run(conn) {
    await conn.simpleCommand('NOOP', 'NOOP')
  },
}
