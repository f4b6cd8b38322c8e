import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { classifyMailServerError } from '../../src/mail/provider-errors.ts'
import type { MailProtocol } from '../../src/mail/provider-errors.ts'

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64')

/** [protocol, server text, expected code, expected transient] — texts from PROVIDERS.md and the RFCs. */
const cases: Array<[MailProtocol, string, string, boolean]> = [
  // Google [PROVIDERS.md, Google]
  [
    'imap',
    'A1 NO [ALERT] Your account is not enabled for IMAP use. Please visit your Gmail settings page and enable your account for IMAP access. (Failure)',
    'gmail_imap_disabled',
    false,
  ],
  ['imap', 'A1 NO [ALERT] Too many simultaneous connections. (Failure)', 'too_many_connections', true],
  // Microsoft [PROVIDERS.md, Microsoft]
  ['imap', 'A3 BAD User is authenticated but not connected.', 'ms_authenticated_not_connected', false],
  ['imap', 'A1 NO AUTHENTICATE failed.', 'mail_auth_rejected', false],
  [
    'smtp',
    '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [SN4PR0601CA0001.namprd06.prod.outlook.com]',
    'ms_smtp_auth_disabled',
    false,
  ],
  [
    'smtp',
    '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox.',
    'ms_smtp_auth_disabled',
    false,
  ],
  ['smtp', '535 5.7.139 Authentication unsuccessful, the user credentials were incorrect.', 'mail_auth_rejected', false],
  [
    'smtp',
    'invalid_grant: AADSTS700082: The refresh token has expired due to inactivity.',
    'ms_refresh_token_expired',
    false,
  ],
  ['smtp', 'AADSTS50011: The redirect URI specified in the request does not match', 'ms_redirect_uri_mismatch', false],
  ['imap', 'AADSTS65001: The user or administrator has not consented', 'ms_consent_missing', false],
  // The SASL error challenge (RFC 7628 section 3.2.2), base64 or decoded, with or without prefix
  ['imap', `+ ${b64({ status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' })}`, 'mail_auth_rejected', false],
  ['smtp', `334 ${b64({ status: '401', schemes: 'bearer mac', scope: 'https://mail.google.com/' })}`, 'mail_auth_rejected', false],
  ['pop3', '{"status":"invalid_token","scope":"mail"}', 'mail_auth_rejected', false],
  ['smtp', `334 ${b64({ status: '403', scope: 'https://outlook.office.com/SMTP.Send' })}`, 'mail_scope_insufficient', false],
  // Standard response codes
  ['imap', 'A1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)', 'mail_auth_rejected', false],
  ['imap', 'A1 NO [UNAVAILABLE] Temporary authentication failure.', 'server_temporary_failure', true],
  ['imap', 'A1 NO [INUSE] Mailbox in use.', 'mailbox_in_use', true],
  ['pop3', '-ERR [AUTH] Invalid credentials.', 'mail_auth_rejected', false],
  ['pop3', '-ERR [IN-USE] Unable to lock maildrop.', 'mailbox_in_use', true],
  ['pop3', '-ERR [LOGIN-DELAY] Wait 300 seconds between logins.', 'login_delay', true],
  ['pop3', '-ERR [SYS/TEMP] Authentication backend unavailable.', 'server_temporary_failure', true],
  ['pop3', '-ERR [SYS/PERM] Mailbox disabled.', 'server_permanent_failure', false],
  ['smtp', '535-5.7.8 Username and Password not accepted.', 'mail_auth_rejected', false],
  ['smtp', '454 4.7.0 Too many login attempts, please try again later.', 'server_temporary_failure', true],
]

describe('classifyMailServerError', () => {
  for (const [protocol, text, code, transient] of cases) {
    it(`when ${protocol} says "${text.slice(0, 70)}", then the code is ${code}`, () => {
      const result = classifyMailServerError(text, protocol)
      assert.ok(result, 'classified')
      assert.equal(result.code, code)
      assert.equal(result.transient, transient)
      assert.ok(result.adminMessage.length > 20)
    })
  }

  it('when Gmail says IMAP is disabled, then the admin is told where to enable it', () => {
    const result = classifyMailServerError(
      'NO [ALERT] Your account is not enabled for IMAP use. Please visit your Gmail settings page and enable your account for IMAP access. (Failure)',
      'imap',
    )
    assert.match(result?.adminMessage ?? '', /Enable IMAP in Gmail Settings > Forwarding and POP\/IMAP/)
  })

  it('when Microsoft says SMTP AUTH is disabled, then the admin is told it is a tenant setting, not a token problem', () => {
    const result = classifyMailServerError(
      '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.',
      'smtp',
    )
    assert.match(result?.adminMessage ?? '', /tenant setting, not a token problem/)
  })

  it('when Microsoft says authenticated but not connected, then the admin is told to re-consent as the mailbox owner', () => {
    const result = classifyMailServerError('BAD User is authenticated but not connected.', 'imap')
    assert.match(result?.adminMessage ?? '', /sign in as the mailbox owner/)
  })

  it('when a code and the wording disagree, then the code decides', () => {
    // The POP3 code says "temporary" although the words say "authentication failed" (RFC 3206).
    assert.equal(
      classifyMailServerError('-ERR [SYS/TEMP] Authentication failed, try again later.', 'pop3')?.code,
      'server_temporary_failure',
    )
    // 5.7.139 without the SMTP AUTH wording is a refused login, not the tenant setting.
    assert.equal(
      classifyMailServerError('535 5.7.139 Authentication unsuccessful.', 'smtp')?.code,
      'mail_auth_rejected',
    )
  })

  it('when a text belongs to another protocol, then it is not classified as that protocol', () => {
    const imapText = 'NO [ALERT] Your account is not enabled for IMAP use.'
    assert.equal(classifyMailServerError(imapText, 'smtp'), undefined)
    assert.equal(classifyMailServerError('-ERR [IN-USE] locked', 'smtp'), undefined)
  })

  it('when the text is unknown or empty, then it returns undefined', () => {
    assert.equal(classifyMailServerError('A1 NO [ALERT] Something nobody documented.', 'imap'), undefined)
    assert.equal(classifyMailServerError('-ERR no such message', 'pop3'), undefined)
    assert.equal(classifyMailServerError('', 'imap'), undefined)
    const notJson = Buffer.from('not json').toString('base64')
    assert.equal(classifyMailServerError(`+ ${notJson}`, 'imap'), undefined)
  })
})
