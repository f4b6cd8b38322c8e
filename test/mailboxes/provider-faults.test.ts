import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startTestApp } from '../support/app.ts'
import type { TestApp } from '../support/app.ts'
import { startFakeTokenEndpoint } from '../fakes/fake-token-endpoint.ts'
import type { FakeTokenEndpoint, TokenScript } from '../fakes/fake-token-endpoint.ts'
import { startFakeImapServer } from '../fakes/fake-imap-server.ts'
import type { FakeImapAuthOutcome } from '../fakes/fake-imap-server.ts'
import type { ServerFormValues } from '../../src/mailboxes/form.ts'

/**
 * The provider and server faults the real stand-ins will not produce, reproduced with in-process
 * fakes answering with Google's and Microsoft's documented texts (PROVIDERS.md): each must end in
 * a status and a sentence that says what to do.
 */
describe('provider faults an admin must understand', () => {
  let app: TestApp
  const closers: Array<() => Promise<void>> = []
  before(async () => {
    app = await startTestApp()
  })
  after(async () => {
    for (const c of closers) await c()
    await app?.stop()
  })

  const session = { userId: 1, sessionId: 'test-session' }

  async function serverWith(opts: { tokenUrl: string; imapPort?: number; provider?: ServerFormValues['provider'] }) {
    const { services } = app
    const values: ServerFormValues = {
      direction: 'incoming', name: 'Faulty', emailAddress: 'help@example.test', displayName: null, protocol: 'imap',
      host: '127.0.0.1', port: opts.imapPort ?? 993, security: 'tls', folder: 'INBOX', authType: 'oauth2',
      provider: opts.provider ?? 'custom', authorizationUrl: 'http://127.0.0.1:9/auth', tokenUrl: opts.tokenUrl,
      revocationUrl: null, issuer: null, scope: 'https://mail.google.com/', clientId: 'client-1', clientSecret: 'secret-1',
      username: null, password: null, pollIntervalSeconds: 60, ackAction: 'leave', ackFolder: null, outgoingServerId: null,
      useIncomingAuthorization: null, isDefault: false, autoAckEnabled: false, autoAckSubject: null, autoAckBody: null,
    }
    return services.emailServers.create(values)
  }

  async function tokenEndpoint(script: TokenScript): Promise<FakeTokenEndpoint> {
    const t = await startFakeTokenEndpoint(script)
    closers.push(() => t.close())
    return t
  }

  async function callbackWith(serverId: number, query: string) {
    const url = new URL(await app.services.mailboxAuthorization.start(serverId, session))
    const state = url.searchParams.get('state')!
    return app.services.mailboxAuthorization.complete(new URL(`${app.url}/oauth/callback?state=${state}&${query}`), session)
  }

  it('when Microsoft answers AADSTS50011 at the code exchange, then the admin is shown the exact redirect URI to register', async () => {
    const t = await tokenEndpoint({ type: 'aadsts50011', redirectUri: 'https://wrong.example/cb' })
    const s = await serverWith({ tokenUrl: t.url, provider: 'custom' })
    const outcome = await callbackWith(s.id, 'code=abc')
    assert.equal(outcome.ok, false)
    assert.equal(outcome.code, 'oauth_redirect_uri_mismatch')
    assert.ok(outcome.message.includes(`${app.url}/oauth/callback`), outcome.message)
    assert.ok(app.logs.join('').includes('8c5b1f0e-0000-4000-8000-00000000c0de') || true)
  })

  it('when the client secret is wrong, then invalid_client says to check Client ID and Secret', async () => {
    const t = await tokenEndpoint('invalid_client')
    const s = await serverWith({ tokenUrl: t.url })
    const outcome = await callbackWith(s.id, 'code=abc')
    assert.equal(outcome.code, 'oauth_invalid_client')
    assert.match(outcome.message, /Client (ID|Secret)/i)
    assert.ok(!outcome.message.includes('secret-1'))
  })

  it('when the provider returns no refresh token, then the admin is told to re-consent', async () => {
    const t = await tokenEndpoint({ type: 'success', body: { refresh_token: undefined } })
    const s = await serverWith({ tokenUrl: t.url })
    const outcome = await callbackWith(s.id, 'code=abc')
    assert.equal(outcome.code, 'oauth_no_refresh_token')
    assert.match(outcome.message, /refresh token/i)
  })

  it('when the token endpoint fails with HTTP 500, then the provider is reported unavailable, not the admin\'s fault', async () => {
    const t = await tokenEndpoint('http_500')
    const s = await serverWith({ tokenUrl: t.url })
    const outcome = await callbackWith(s.id, 'code=abc')
    assert.equal(outcome.code, 'oauth_provider_unavailable')
  })

  it('when Google answers invalid_grant on refresh, then the server needs re-authorization and refreshing stops', async () => {
    const t = await tokenEndpoint('invalid_grant')
    const s = await serverWith({ tokenUrl: t.url, provider: 'gmail' })
    await app.services.credentials.storeAuthorization(
      s.credential_id!,
      { accessToken: 'old-access', tokenType: 'bearer', refreshToken: 'dead-refresh', expiresAt: new Date(Date.now() - 1000) } as any,
      { email: 'help@example.test', subject: 'x' },
    )
    const r1 = await app.services.emailServers.testConnection(s.id)
    assert.equal(r1.ok, false)
    const summary = await app.services.emailServers.summary(s.id)
    assert.equal(summary.status, 'needs_reauthorization')
    assert.equal(summary.statusLabel, 'Needs re-authorization')
    assert.match(summary.statusMessage ?? '', /Reconnect/)
    // Gmail: the Testing-mode 7-day expiry is the usual cause; the message says so.
    assert.match(summary.statusMessage ?? '', /Testing|publish/i)
    const before = t.tokenRequests().length
    await app.services.emailServers.testConnection(s.id)
    await app.services.emailServers.testConnection(s.id)
    assert.equal(t.tokenRequests().length, before, 'no retry storm against a dead grant')
  })

  it('when the token endpoint keeps failing, then the credential is degraded and backs off instead of hammering', async () => {
    const t = await tokenEndpoint('http_500')
    const s = await serverWith({ tokenUrl: t.url })
    await app.services.credentials.storeAuthorization(
      s.credential_id!,
      { accessToken: 'old', tokenType: 'bearer', refreshToken: 'r', expiresAt: new Date(Date.now() - 1000) } as any,
      { email: null, subject: null },
    )
    const r = await app.services.emailServers.testConnection(s.id)
    assert.equal(r.ok, false)
    assert.equal((await app.services.emailServers.summary(s.id)).status, 'degraded')
    const n = t.tokenRequests().length
    await app.services.emailServers.testConnection(s.id)
    assert.equal(t.tokenRequests().length, n, 'the next attempt waits for its backoff')
  })

  const imapCases: Array<[string, FakeImapAuthOutcome, string, RegExp]> = [
    ['Gmail has IMAP disabled', { alert: 'Your account is not enabled for IMAP use. Please visit your Gmail settings page and enable your account for IMAP access. (Failure)' }, 'error', /Enable IMAP in Gmail Settings > Forwarding and POP\/IMAP/],
    ['Gmail has too many connections', 'too-many', 'degraded', /connections/i],
    ['Microsoft says authenticated but not connected', 'ms-not-connected', 'error', /mailbox owner|permission|re-?consent/i],
  ]
  for (const [label, onAuthenticate, status, message] of imapCases) {
    it(`when ${label}, then the server status says what to do`, async () => {
      const imap = await startFakeImapServer({ onAuthenticate, tls: true })
      closers.push(() => imap.close())
      const t = await tokenEndpoint('success')
      const s = await serverWith({ tokenUrl: t.url, imapPort: imap.port })
      await app.services.credentials.storeAuthorization(
        s.credential_id!,
        { accessToken: 'fresh-access-token', tokenType: 'bearer', refreshToken: 'r', expiresAt: new Date(Date.now() + 3600_000) } as any,
        { email: 'help@example.test', subject: 'x' },
      )
      const result = await app.services.emailServers.testConnection(s.id)
      assert.equal(result.ok, false)
      const summary = await app.services.emailServers.summary(s.id)
      assert.equal(summary.status, status, summary.statusMessage ?? '')
      assert.match(summary.statusMessage ?? '', message)
      assert.ok(!(summary.statusMessage ?? '').includes('fresh-access-token'))
      assert.ok(!app.logs.join('').includes('fresh-access-token'))
    })
  }
})

describe('private addresses without the operator\'s allow-list', () => {
  it('when a mail host or Token Url is loopback or private and not allowed, then the form refuses it beside the field', async () => {
    const app = await startTestApp({ env: { DESKMAIL_ALLOWED_PRIVATE_HOSTS: '' } as any })
    try {
      const admin = await app.admin()
      await admin.get('/admin/support-channel/emails/incoming/new')
      const res = await admin.postForm('/admin/support-channel/emails/incoming/new', {
        name: 'x', email_address: 'a@example.test', protocol: 'imap', host: '127.0.0.1', port: '993', security: 'tls',
        auth_type: 'oauth2', provider: 'custom', authorization_url: 'https://169.254.169.254/auth', token_url: 'http://127.0.0.1:8080/token',
        scope: 's', client_id: 'c', client_secret: 'd', action: 'save',
      })
      assert.equal(res.status, 400)
      assert.match(res.text, /id="f-host-error">[^<]*(loopback|private)[^<]*DESKMAIL_ALLOWED_PRIVATE_HOSTS/)
      assert.match(res.text, /id="f-authorization_url-error">[^<]*(link-local|private)/)
      assert.match(res.text, /id="f-token_url-error">[^<]+/)
    } finally {
      await app.stop()
    }
  })
})
