import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { classifyDeliveryError } from '../../src/outbox/delivery-errors.ts'
import { AppError } from '../../src/shared/errors.ts'

const at = { host: 'smtp.office365.com', port: 587, dataHandedOver: false, oauth: true }
/** The shape nodemailer gives its errors (code, responseCode, response, command). */
const smtpError = (code: string, response?: string, command?: string) =>
  Object.assign(new Error(response ? `failed: ${response}` : code), { code, response, responseCode: response ? Number(response.slice(0, 3)) : undefined, command })

describe('classifying a failed delivery', () => {
  it('when Microsoft answers 535 5.7.139 SmtpClientAuthentication is disabled, then it is a configuration failure with the fix, not a token problem', () => {
    const f = classifyDeliveryError(
      smtpError('EAUTH', '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.', 'AUTH XOAUTH2'),
      at,
    )
    assert.equal(f.verdict, 'failed')
    assert.equal(f.code, 'ms_smtp_auth_disabled')
    assert.match(f.message, /SMTP AUTH is disabled/)
    assert.match(f.message, /Microsoft 365 admin center/)
    assert.match(f.message, /not a token problem/)
  })

  it('when the server refuses the token (535 5.7.8 after the XOAUTH2 challenge), then the token is to be refreshed once', () => {
    const f = classifyDeliveryError(smtpError('EAUTH', '535 5.7.8 Error: authentication failed', 'AUTH XOAUTH2'), at)
    assert.equal(f.verdict, 'auth_rejected')
    const pw = classifyDeliveryError(smtpError('EAUTH', '535 5.7.8 Error: authentication failed', 'AUTH LOGIN'), { ...at, oauth: false })
    assert.equal(pw.verdict, 'failed')
    assert.match(pw.message, /password/)
  })

  it('when the server answers 4xx (421, 451, 454), then the message is retried', () => {
    for (const r of ['421 4.3.2 Service not available', '451 4.3.0 Mail server temporarily rejected message', '452 4.2.2 Mailbox full']) {
      assert.equal(classifyDeliveryError(smtpError('EENVELOPE', r, 'MAIL FROM'), at).verdict, 'retry', r)
    }
    assert.equal(classifyDeliveryError(smtpError('EAUTH', '454 4.7.0 Temporary authentication failure', 'AUTH XOAUTH2'), at).verdict, 'retry')
  })

  it('when the server answers 5xx to a recipient or the data, then the message fails with the server\'s answer', () => {
    const f = classifyDeliveryError(smtpError('EENVELOPE', '550 5.1.1 <nobody@customer.test>: Recipient address rejected: User unknown', 'RCPT TO'), at)
    assert.equal(f.verdict, 'failed')
    assert.equal(f.code, 'smtp_rejected')
    assert.match(f.message, /User unknown/)
    assert.equal(f.serverResponse, '550 5.1.1 <nobody@customer.test>: Recipient address rejected: User unknown')
  })

  it('when the network fails before the message was handed over, then it is retried; after, its outcome is unknown', () => {
    const net = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:587'), { code: 'ESOCKET' })
    assert.equal(classifyDeliveryError(net, at).verdict, 'retry')
    const lost = Object.assign(new Error('Connection closed unexpectedly'), { code: 'ECONNECTION' })
    const f = classifyDeliveryError(lost, { ...at, dataHandedOver: true })
    assert.equal(f.verdict, 'uncertain')
    assert.match(f.message, /may have been delivered/)
  })

  it('when the credential needs Reconnect or the token provider is down, then the item waits or is retried', () => {
    assert.equal(classifyDeliveryError(new AppError('credential_needs_reauthorization', 'click Reconnect'), at).verdict, 'waiting_authorization')
    assert.equal(classifyDeliveryError(new AppError('oauth_invalid_grant', 'revoked'), at).verdict, 'waiting_authorization')
    assert.equal(classifyDeliveryError(new AppError('credential_degraded', 'provider down', { transient: true }), at).verdict, 'retry')
    assert.equal(classifyDeliveryError(new AppError('oauth_provider_unavailable', 'HTTP 503', { transient: true }), at).verdict, 'retry')
    assert.equal(classifyDeliveryError(new AppError('server_password_missing', 'no password'), at).verdict, 'failed')
  })
})
