import { AppError, isAppError } from '../shared/errors.ts'
import { classifyMailServerError } from './provider-errors.ts'
import type { MailProtocol } from './provider-errors.ts'

const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_NOT_YET_VALID',
])
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE'])

/**
 * Turns whatever a mail protocol client threw (imapflow, our POP3 client, nodemailer) into an
 * AppError with a stable code and a sentence the admin can act on. Server texts are not secret;
 * the access token never appears in them.
 */
export function mailConnectionError(err: unknown, protocol: MailProtocol, where: { host: string; port: number }): AppError {
  if (isAppError(err) && !err.code.startsWith('pop3_auth')) {
    const known = classifyMailServerError(err.message, protocol)
    return known ? new AppError(known.code, known.adminMessage, { transient: known.transient, cause: err }) : err
  }
  const e = err as { code?: string; message?: string; responseText?: string; response?: string; authenticationFailed?: boolean; details?: any }
  const serverText = e.responseText ?? e.response ?? (isAppError(err) ? err.message : '') ?? ''
  const known = classifyMailServerError(`${serverText} ${e.message ?? ''}`.trim(), protocol)
  if (known) return new AppError(known.code, known.adminMessage, { transient: known.transient, cause: err })
  const code = e.code ?? ''
  if (TLS_CODES.has(code) || /certificate/i.test(e.message ?? '')) {
    return new AppError(
      'mail_tls_untrusted',
      `The certificate of ${where.host}:${where.port} is not trusted (${code || e.message}). deskmail always verifies certificates: for a private CA, start deskmail with NODE_EXTRA_CA_CERTS=/path/to/ca.pem.`,
      { cause: err },
    )
  }
  if (e.authenticationFailed || (isAppError(err) && err.code.startsWith('pop3_auth')) || /\b535\b|AUTHENTICATE failed|authentication failed/i.test(serverText)) {
    return new AppError(
      'mail_auth_rejected',
      `${where.host} rejected the sign-in${serverText ? ` ("${serverText.slice(0, 200)}")` : ''}. The token was valid at the provider, so the mailbox address, the granted scope or the mailbox permissions do not match: check them and click Reconnect.`,
      { cause: err },
    )
  }
  if (NETWORK_CODES.has(code) || /timeout|timed out|closed/i.test(`${code} ${e.message}`)) {
    return new AppError('mail_server_unreachable', `Cannot reach ${where.host}:${where.port} (${code || e.message}). deskmail retries by itself.`, {
      transient: true,
      cause: err,
    })
  }
  return new AppError('mail_protocol_error', `${where.host}:${where.port} answered unexpectedly: ${(e.message ?? String(err)).slice(0, 300)}`, {
    transient: true,
    cause: err,
  })
}
