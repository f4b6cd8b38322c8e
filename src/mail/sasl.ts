/**
 * SASL payloads for OAuth 2.0 bearer tokens: XOAUTH2 (Google's convention, also spoken by
 * Microsoft and Dovecot) and OAUTHBEARER (RFC 7628). Shared by the IMAP, POP3 and SMTP clients.
 *
 * Every string built here contains an access token: never log it, never put it in an error.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7628#section-3.1
 * @see https://developers.google.com/workspace/gmail/imap/xoauth2-protocol
 * @see /work/shared/PROVIDERS.md, section "SASL"
 */
import { AppError } from '../shared/errors.ts'

/**
 * What the client answers to an OAUTHBEARER error challenge: a single %x01 (RFC 7628 section 3.2.3),
 * base64-encoded. The server then fails the exchange. XOAUTH2 answers with an empty line instead.
 * @see https://www.rfc-editor.org/rfc/rfc7628#section-3.2.3
 */
export const OAUTHBEARER_ERROR_ANSWER = 'AQ=='

/** What the client answers to an XOAUTH2 error challenge: an empty response (Google's XOAUTH2 document). */
export const XOAUTH2_ERROR_ANSWER = ''

/** The JSON a server sends, base64-encoded, when it rejects a token (RFC 7628 section 3.2.2). */
export interface SaslErrorChallenge {
  /** `"401"` (invalid token), `"400"`, `"invalid_token"`...: always a string here, whatever the server sent. */
  status?: string
  /** Authentication schemes the server accepts, e.g. `"bearer"` or Google's `"bearer mac"`. */
  schemes?: string
  /** The scope the server wants, e.g. `"https://mail.google.com/"`. */
  scope?: string
}

// RFC 7628 section 3.1: a value is VCHAR, SP, HTAB, CR or LF, and %x01 separates the key/value
// pairs. A control character in a user name or token would end the field early and let the rest
// of the value become fields of its own (auth= included), so such values are refused outright.
const CONTROL_CHARS = /[\x00-\x1f\x7f]/

function assertSaslValue(value: string, what: 'user' | 'access token' | 'host'): void {
  if (value.length === 0) {
    throw new AppError('sasl_invalid_value', `The ${what} for SASL authentication is empty`)
  }
  if (CONTROL_CHARS.test(value)) {
    // The value itself is not quoted: the token is a secret, and the user name is not needed to act on this.
    throw new AppError(
      'sasl_invalid_value',
      `The ${what} for SASL authentication contains control characters`,
    )
  }
}

/**
 * The XOAUTH2 initial client response:
 * `base64("user=" + user + "\x01auth=Bearer " + accessToken + "\x01\x01")`.
 * For a shared mailbox (Microsoft) `user` is the mailbox address and the token belongs to a user
 * with access to it.
 * @see https://developers.google.com/workspace/gmail/imap/xoauth2-protocol#the_sasl_xoauth2_mechanism
 */
export function xoauth2InitialResponse(user: string, accessToken: string): string {
  assertSaslValue(user, 'user')
  assertSaslValue(accessToken, 'access token')
  return Buffer.from(`user=${user}\x01auth=Bearer ${accessToken}\x01\x01`, 'utf8').toString('base64')
}

/**
 * Escapes a saslname for the GS2 header (RFC 5801 section 4): "=" and "," delimit the header,
 * so they become "=3D" and "=2C" ("=" first, so the escapes are not escaped again).
 */
function escapeSaslName(value: string): string {
  return value.replace(/=/g, '=3D').replace(/,/g, '=2C')
}

/**
 * The OAUTHBEARER initial client response (RFC 7628 section 3.1):
 * `base64("n,a=" + user + ",\x01host=" + host + "\x01port=" + port + "\x01auth=Bearer " + token + "\x01\x01")`.
 * `host` and `port` must describe the connection actually in use: a server that checks them
 * rejects a mismatch with a permanent error that no token refresh can clear.
 * @see https://www.rfc-editor.org/rfc/rfc7628#section-3.1
 */
export function oauthbearerInitialResponse(params: {
  user: string
  host: string
  port: number
  accessToken: string
}): string {
  const { user, host, port, accessToken } = params
  assertSaslValue(user, 'user')
  assertSaslValue(host, 'host')
  assertSaslValue(accessToken, 'access token')
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new AppError('sasl_invalid_value', `The port for SASL authentication is not a TCP port: ${port}`)
  }
  const gs2Header = `n,a=${escapeSaslName(user)},`
  const fields = [gs2Header, `host=${host}`, `port=${port}`, `auth=Bearer ${accessToken}`, '', '']
  const payload = fields.join('\x01')
  return Buffer.from(payload, 'utf8').toString('base64')
}

// A server challenge is base64 (RFC 4648 section 4; the URL-safe alphabet tolerated) and carries
// no secret: it says why the token was refused.
const BASE64_TEXT = /^[A-Za-z0-9+/_-]*={0,2}$/

/**
 * Decodes the error challenge a server sends when it refuses a token: IMAP `+ <b64>`,
 * POP3 `+ <b64>`, SMTP `334 <b64>`. Lenient on purpose, since only diagnostics depend on it:
 * accepts the bare base64 or the whole line with its `+` / `334` prefix, a number or a string
 * for `status`, and returns `undefined` for anything that is not a base64 JSON object
 * (an empty challenge included).
 * @see https://www.rfc-editor.org/rfc/rfc7628#section-3.2.2
 */
export function parseSaslErrorChallenge(b64: string): SaslErrorChallenge | undefined {
  const text = b64
    .trim()
    .replace(/^(\+|334)(\s+|$)/, '')
    .trim()
  if (text.length === 0 || !BASE64_TEXT.test(text)) return undefined
  let json: unknown
  try {
    const decoded = Buffer.from(text, 'base64').toString('utf8').trim()
    if (!decoded.startsWith('{')) return undefined
    json = JSON.parse(decoded)
  } catch {
    return undefined
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return undefined
  const record = json as Record<string, unknown>
  const field = (name: string): string | undefined => {
    const value = record[name]
    if (typeof value === 'string') return value
    if (typeof value === 'number' && Number.isFinite(value)) return String(value)
    return undefined
  }
  const challenge: SaslErrorChallenge = {}
  const status = field('status')
  const schemes = field('schemes')
  const scope = field('scope')
  if (status !== undefined) challenge.status = status
  if (schemes !== undefined) challenge.schemes = schemes
  if (scope !== undefined) challenge.scope = scope
  return challenge
}
