import { classifyMailServerError } from '../mail/provider-errors.ts'
import { isAppError } from '../shared/errors.ts'

/**
 * What the outbox does after a failed delivery attempt:
 * - `retry`: temporary (4xx reply, network, token provider down): queued again with backoff;
 * - `failed`: permanent (5xx reply, configuration): shown with the server's answer, never retried
 *   by itself (the agent can click Send again once the cause is fixed);
 * - `waiting_authorization`: the OAuth credential needs Reconnect; released when it is connected;
 * - `auth_rejected`: the server refused the access token: refresh it once and try again;
 * - `uncertain`: the connection broke after the whole message was handed to the server, so it may
 *   have been delivered: not resent automatically (see sender.ts for why).
 */
export type DeliveryVerdict = 'retry' | 'failed' | 'waiting_authorization' | 'auth_rejected' | 'uncertain'

export interface DeliveryFailure {
  verdict: DeliveryVerdict
  code: string
  /** For the agent and the admin: what happened, with the server's own answer where there is one. */
  message: string
  /** The server's reply line, when there was one (not secret: it never contains the token). */
  serverResponse?: string
}

interface NodemailerError {
  code?: string
  responseCode?: number
  response?: string
  command?: string
  message?: string
}

/**
 * Classifies what nodemailer (or our credential store) threw while sending one message.
 * `dataHandedOver` is true when the whole message had been given to the connection: a broken
 * connection from then on may have lost only the server's final "250" (RFC 1047).
 * @see https://www.rfc-editor.org/rfc/rfc5321#section-4.2.1 (reply codes: 4yz transient, 5yz permanent)
 * @see https://www.rfc-editor.org/rfc/rfc1047 (duplicate messages when the reply to the final dot is lost)
 */
export function classifyDeliveryError(
  err: unknown,
  ctx: { host: string; port: number; dataHandedOver: boolean; oauth: boolean },
): DeliveryFailure {
  if (isAppError(err)) {
    if (err.code === 'credential_needs_reauthorization' || (err.code.startsWith('oauth_') && !err.transient)) {
      const message = `Waiting for the outgoing server to be authorized again: ${err.message}`
      return { verdict: 'waiting_authorization', code: err.code, message }
    }
    return { verdict: err.transient ? 'retry' : 'failed', code: err.code, message: err.message }
  }
  const e = (err ?? {}) as NodemailerError
  const where = `${ctx.host}:${ctx.port}`
  const response = typeof e.response === 'string' ? e.response.trim().slice(0, 500) : undefined
  const detail = `${e.code ?? 'error'}: ${(e.message ?? String(err)).slice(0, 200)}`
  const answered = (verdict: DeliveryVerdict, code: string, message: string): DeliveryFailure => ({
    verdict,
    code,
    message,
    serverResponse: response,
  })

  if (response && e.responseCode) {
    const temporary = e.responseCode >= 400 && e.responseCode < 500
    const known = classifyMailServerError(response, 'smtp')
    if (e.code === 'EAUTH' || e.command?.startsWith('AUTH')) {
      if (temporary) {
        return answered('retry', 'smtp_auth_temporary', `${where} could not check the sign-in right now (${response}); deskmail retries.`)
      }
      // 535 5.7.139 "SmtpClientAuthentication is disabled": a tenant setting, not the token, so
      // refreshing it cannot help (PROVIDERS.md, Microsoft).
      if (known && !known.transient && known.code !== 'mail_auth_rejected') {
        return answered('failed', known.code, `${known.adminMessage} (${where} answered: ${response})`)
      }
      if (ctx.oauth) return answered('auth_rejected', 'mail_auth_rejected', `${where} refused the access token (${response}).`)
      const message = `${where} refused the user name or password (${response}). Edit the outgoing server and enter the right password.`
      return answered('failed', 'mail_auth_rejected', message)
    }
    if (temporary) {
      return answered('retry', 'smtp_temporary_failure', `${where} answered with a temporary failure: ${response}. deskmail retries by itself.`)
    }
    if (e.responseCode >= 500) {
      const hint = known && known.code !== 'server_permanent_failure' ? ` ${known.adminMessage}` : ''
      return answered('failed', 'smtp_rejected', `${where} refused the message: ${response}.${hint}`)
    }
  }
  if (ctx.dataHandedOver) {
    const message =
      `The connection to ${where} broke after the whole message was sent, before the server confirmed it (${detail}). ` +
      'It may have been delivered, so deskmail does not resend it by itself: check with the recipient, then use Send again if needed.'
    return { verdict: 'uncertain', code: 'smtp_outcome_unknown', message }
  }
  if (e.code === 'ETLS' || /certificate/i.test(e.message ?? '')) {
    const message = `The TLS connection to ${where} failed (${(e.message ?? '').slice(0, 200)}). Check the Security setting and the server's certificate.`
    return { verdict: 'failed', code: 'mail_tls_untrusted', message }
  }
  return { verdict: 'retry', code: 'mail_server_unreachable', message: `Cannot deliver through ${where} right now (${detail}). deskmail retries by itself.` }
}
