import { AppError } from '../../../shared/errors.ts'

/** RFC 1939 section 5: a message number is 1, 2, ... up to the count STAT gives. */
export function assertMessageNumber(msg: number): void {
  if (!Number.isSafeInteger(msg) || msg < 1) {
    throw new AppError(
      'pop3_invalid_argument',
      `POP3 message number must be a positive integer: ${String(msg)}`,
    )
  }
}

/**
 * Splits a multi-line body into its lines (CRLF removed, empty lines dropped), for the listing
 * commands (CAPA, UIDL, LIST) whose bodies are short ASCII lines.
 */
export function bodyLines(body: Buffer): string[] {
  return body
    .toString('latin1')
    .split(/\r?\n/)
    .filter((line) => line.length > 0)
}
