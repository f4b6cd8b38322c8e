import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { describeOAuthError } from '../../src/oauth/admin-messages.ts'
import { checkConsentedAccount, issuerMatches } from '../../src/oauth/id-token.ts'
import { OAUTH_ERROR_CODES } from '../../src/oauth/oauth-errors.ts'
import { AppError } from '../../src/shared/errors.ts'

const ctx = { redirectUri: 'https://desk.example.com/oauth/callback' }

describe('admin messages', () => {
  test('when the redirect URI mismatches, then the sentence shows the exact URI to register', () => {
    const text = describeOAuthError('oauth_redirect_uri_mismatch', {}, { ...ctx, provider: 'gmail' })
    assert.match(text, /register exactly https:\/\/desk\.example\.com\/oauth\/callback /)
    assert.match(text, /Google Cloud console/)
    const ms = describeOAuthError(
      'oauth_redirect_uri_mismatch',
      { aadsts: 'AADSTS50011', correlation_id: 'c-1' },
      { ...ctx, provider: 'microsoft365' },
    )
    assert.match(ms, /AADSTS50011, correlation ID c-1/)
  })

  test('when a Google refresh token is dead, then the sentence says Reconnect and explains the 7-day Testing expiry', () => {
    const text = describeOAuthError('oauth_invalid_grant', { operation: 'refresh' }, { ...ctx, provider: 'gmail' })
    assert.match(text, /the authorization was revoked or expired: click Reconnect/i)
    assert.match(text, /7 days/)
    assert.match(text, /publish the app or make it Internal/)
  })

  test('when a Microsoft refresh token is dead, then Google advice is absent and inactivity is named for AADSTS700082', () => {
    const plain = describeOAuthError('oauth_invalid_grant', { operation: 'refresh' }, { ...ctx, provider: 'microsoft365' })
    assert.doesNotMatch(plain, /7 days|publish/)
    const inactive = describeOAuthError(
      'oauth_invalid_grant',
      { operation: 'refresh', aadsts: 'AADSTS700082' },
      { ...ctx, provider: 'microsoft365' },
    )
    assert.match(inactive, /90 days without use: click Reconnect/)
  })

  test('when the code exchange fails with invalid_grant, then the sentence is about the sign-in, not a revoked token', () => {
    const text = describeOAuthError('oauth_invalid_grant', { operation: 'exchange' }, { ...ctx, provider: 'gmail' })
    assert.match(text, /authorization code expired or was already used/)
  })

  test('when another account consented, then the sentence names both accounts', () => {
    const text = describeOAuthError(
      'oauth_account_mismatch',
      { signed_in_as: 'me@gmail.com', expected_account: 'support@example.com' },
      ctx,
    )
    assert.equal(
      text,
      'Signed in as me@gmail.com, but this server is for support@example.com: reconnect and choose support@example.com.',
    )
  })

  test('when a private address is refused, then the sentence names the host and the environment variable', () => {
    const text = describeOAuthError(
      'endpoint_private_address',
      { host: 'idp.internal', address: '10.0.0.5', purpose: 'token' },
      ctx,
    )
    assert.match(text, /Token Url idp\.internal \(10\.0\.0\.5\)/)
    assert.match(text, /DESKMAIL_ALLOWED_PRIVATE_HOSTS/)
  })

  test('when the Scope is rejected by Microsoft, then the sentence gives the Microsoft scopes', () => {
    const text = describeOAuthError('oauth_invalid_scope', {}, { ...ctx, provider: 'microsoft365' })
    assert.match(text, /IMAP\.AccessAsUser\.All/)
    assert.match(text, /offline_access/)
  })

  test('when any OAuth error code is described, then it gets its own sentence, not the fallback', () => {
    for (const code of Object.values(OAUTH_ERROR_CODES)) {
      const text = describeOAuthError(code, {}, ctx)
      assert.ok(!text.startsWith('OAuth error'), code)
      assert.ok(text.endsWith('.'), code)
    }
    for (const code of ['endpoint_not_https', 'endpoint_invalid_url', 'host_unresolvable', 'google_json_installed_client', 'google_json_invalid']) {
      assert.ok(!describeOAuthError(code, {}, ctx).startsWith('OAuth error'), code)
    }
    assert.match(describeOAuthError('something_new', {}, ctx), /^OAuth error something_new/)
  })
})

describe('consenting account', () => {
  test('when the ID token email equals the mailbox ignoring case, then it is accepted', () => {
    assert.equal(checkConsentedAccount({ sub: '1', email: 'Support@Example.com', email_verified: true }, 'support@example.com'), 'Support@Example.com')
  })

  test('when another account consented, then oauth_account_mismatch names both', () => {
    assert.throws(
      () => checkConsentedAccount({ sub: '1', email: 'me@gmail.com', email_verified: true }, 'support@example.com'),
      (err) =>
        err instanceof AppError &&
        err.code === 'oauth_account_mismatch' &&
        err.details.signed_in_as === 'me@gmail.com' &&
        err.details.expected_account === 'support@example.com',
    )
  })

  test('when the address is not verified, then it does not count as the mailbox', () => {
    assert.throws(
      () => checkConsentedAccount({ sub: '1', email: 'support@example.com', email_verified: false }, 'support@example.com'),
      (err) => err instanceof AppError && err.details.reason === 'email_unverified',
    )
  })

  test('when the ID token tells no address, then the check is left to the mail login', () => {
    assert.equal(checkConsentedAccount(undefined, 'support@example.com'), undefined)
    assert.equal(checkConsentedAccount({ sub: '1' }, 'support@example.com'), undefined)
    assert.equal(checkConsentedAccount({ sub: '1', preferred_username: 'support@example.com' }, 'support@example.com'), 'support@example.com')
  })

  test('when issuers are compared, then Google aliases and Microsoft tenant templates match and others do not', () => {
    assert.ok(issuerMatches('https://accounts.google.com', 'accounts.google.com'))
    assert.ok(!issuerMatches('https://accounts.google.com', 'https://accounts.google.com.evil'))
    const template = 'https://login.microsoftonline.com/{tenantid}/v2.0'
    const tid = '72f988bf-86f1-41af-91ab-2d7cd011db47'
    assert.ok(issuerMatches(template, `https://login.microsoftonline.com/${tid}/v2.0`))
    assert.ok(issuerMatches(template, `https://login.microsoftonline.com/${tid}/v2.0`, tid))
    assert.ok(!issuerMatches(template, `https://login.microsoftonline.com/${tid}/v2.0`, 'other'))
    assert.ok(!issuerMatches(template, 'https://login.microsoftonline.com/evil.com/x/v2.0'))
  })
})
