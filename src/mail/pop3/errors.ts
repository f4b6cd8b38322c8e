/**
 * The AppErrors the POP3 client throws. Messages carry the server's response text (not secret: it
 * is what the server said) and never a command line, since AUTH and PASS lines hold secrets.
 */
import { AppError } from '../../shared/errors.ts'
import { classifyMailServerError } from '../provider-errors.ts'

/**
 * Every code the POP3 client throws (AppError.code); authenticateXOAuth2 may also throw sasl.ts's
 * `sasl_invalid_value` for a user name or token holding control characters.
 */
export const POP3_ERROR_CODES = [
  /** The server refused the credentials (details: status, schemes, scope, responseCode, classification). */
  'pop3_auth_failed',
  /** `-ERR` to an ordinary command (details: command, responseCode, classification). */
  'pop3_command_failed',
  /** `-ERR` to QUIT from TRANSACTION: some messages marked with DELE were not removed. */
  'pop3_update_failed',
  /** The greeting was not `+OK`. */
  'pop3_connection_refused',
  /** TCP could not connect (refused, unreachable, DNS). Transient. */
  'pop3_connection_failed',
  /** The connection ended or was closed before the answer. Transient. */
  'pop3_connection_closed',
  /** No bytes from the server within timeoutMs while an answer was due. Transient. */
  'pop3_timeout',
  /** Certificate not trusted or not matching, TLS to a plain port, STLS refused or injected data. */
  'pop3_tls_failed',
  /** The server broke the protocol (framing, malformed listing, unexpected answer). */
  'pop3_protocol_error',
  /** The command is not allowed in the session's state (e.g. RETR before login). */
  'pop3_invalid_state',
  /** A bad argument from the caller (message number, CR/LF in a user name...). */
  'pop3_invalid_argument',
] as const

export type Pop3ErrorCode = (typeof POP3_ERROR_CODES)[number]

/** Server text is kept short in messages: enough to diagnose, never a flood into the logs. */
const MAX_TEXT = 300

export function shortText(text: string): string {
  const oneLine = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim()
  return oneLine.length > MAX_TEXT ? `${oneLine.slice(0, MAX_TEXT)}...` : oneLine
}

/**
 * RFC 2449 section 8 / RFC 3206: `-ERR [SYS/TEMP] ...`, `[IN-USE]`, `[LOGIN-DELAY]` are worth a
 * retry later; `[SYS/PERM]` and `[AUTH]` are not.
 * @see https://www.rfc-editor.org/rfc/rfc3206
 */
export function responseCode(text: string): string | undefined {
  const match = /^(?:[+-](?:OK|ERR)\s+)?\[([^\]\s]+)[^\]]*\]/i.exec(text.trim())
  return match ? match[1].toUpperCase() : undefined
}

const TRANSIENT_CODES = new Set(['SYS/TEMP', 'IN-USE', 'LOGIN-DELAY'])

/** A `-ERR` answer to a command that is not about credentials. */
export function commandFailed(command: string, responseLine: string): AppError {
  const code = responseCode(responseLine)
  const classified = classifyMailServerError(responseLine, 'pop3')
  return new AppError('pop3_command_failed', `POP3 ${command} failed: ${shortText(responseLine)}`, {
    transient: classified?.transient ?? (code !== undefined && TRANSIENT_CODES.has(code)),
    details: { command, responseCode: code, classification: classified?.code },
  })
}

export function protocolError(message: string, cause?: unknown): AppError {
  return new AppError('pop3_protocol_error', message, { cause })
}

export function isTransientResponseCode(code: string | undefined): boolean {
  return code !== undefined && TRANSIENT_CODES.has(code)
}
