// The fakes other tests rely on: the IMAP one must fail imapflow exactly the way Gmail and Microsoft
// do (and the texts must classify), the token endpoint must answer its script and record requests.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { ImapFlow } from 'imapflow'
import { classifyMailServerError } from '../../src/mail/provider-errors.ts'
import {
  GMAIL_IMAP_DISABLED_ALERT,
  startFakeImapServer,
} from '../fakes/fake-imap-server.ts'
import type { FakeImapOptions, FakeImapServer } from '../fakes/fake-imap-server.ts'
import {
  FAKE_CORRELATION_ID,
  GOOGLE_INVALID_GRANT,
  startFakeTokenEndpoint,
} from '../fakes/fake-token-endpoint.ts'
import type { FakeTokenEndpoint, TokenScript } from '../fakes/fake-token-endpoint.ts'

const USER = 'support@example.com'
const TOKEN = 'ya29.fake-imap-token'

const stoppers: Array<() => Promise<void>> = []
after(async () => {
  await Promise.all(stoppers.map((stop) => stop()))
})

async function imapServer(options: FakeImapOptions): Promise<FakeImapServer> {
  const server = await startFakeImapServer(options)
  stoppers.push(() => server.close())
  return server
}

function imapClient(server: FakeImapServer): ImapFlow {
  const client = new ImapFlow({
    host: server.host,
    port: server.port,
    secure: server.secure,
    tls: { ca: server.ca },
    auth: { user: USER, accessToken: TOKEN },
    logger: false,
  })
  // imapflow emits 'error' on a failed connection as well as rejecting connect().
  client.on('error', () => undefined)
  return client
}

/** imapflow's rejection of connect(), with the server's text it carries. */
type ImapFailure = { response: string; oauthError?: Record<string, string> }

async function connectError(server: FakeImapServer): Promise<ImapFailure> {
  const client = imapClient(server)
  let caught: unknown
  await assert.rejects(client.connect(), (err) => {
    caught = err
    return true
  })
  const err = caught as { response?: unknown; oauthError?: Record<string, string> }
  assert.equal(typeof err.response, 'string', 'imapflow reports the server text')
  return { response: err.response as string, oauthError: err.oauthError }
}

describe('fake IMAP server with imapflow', () => {
  for (const tls of [false, true]) {
    it(`when AUTHENTICATE is ok${tls ? ' over TLS' : ''}, then imapflow connects, opens INBOX and logs out`, async () => {
      const server = await imapServer({ onAuthenticate: 'ok', tls })
      const client = imapClient(server)
      await client.connect()
      const lock = await client.getMailboxLock('INBOX')
      lock.release()
      await client.logout()
      assert.deepEqual(server.authAttempts, [{ mechanism: 'XOAUTH2', user: USER, token: TOKEN }])
    })
  }

  it('when Gmail has IMAP disabled, then imapflow fails with the ALERT text, classified gmail_imap_disabled', async () => {
    const server = await imapServer({ onAuthenticate: { alert: GMAIL_IMAP_DISABLED_ALERT } })
    const { response } = await connectError(server)
    assert.match(response, /NO \[ALERT\] Your account is not enabled for IMAP use/)
    assert.equal(classifyMailServerError(response, 'imap')?.code, 'gmail_imap_disabled')
  })

  it('when Gmail has too many connections, then the failure classifies as a transient too_many_connections', async () => {
    const server = await imapServer({ onAuthenticate: 'too-many' })
    const { response } = await connectError(server)
    const classified = classifyMailServerError(response, 'imap')
    assert.equal(classified?.code, 'too_many_connections')
    assert.equal(classified?.transient, true)
  })

  it('when Microsoft accepts AUTHENTICATE but the account cannot open the mailbox, then imapflow fails with ms_authenticated_not_connected', async () => {
    const server = await imapServer({ onAuthenticate: 'ms-not-connected' })
    const { response } = await connectError(server)
    assert.equal(classifyMailServerError(response, 'imap')?.code, 'ms_authenticated_not_connected')
    const authenticated = server.commands.some((c) => / AUTHENTICATE XOAUTH2 /.test(c))
    assert.ok(authenticated, 'AUTHENTICATE went through first')
  })

  it('when the token is rejected, then imapflow answers the challenge and gets NO AUTHENTICATE failed', async () => {
    const server = await imapServer({ onAuthenticate: 'rejected' })
    const { response, oauthError } = await connectError(server)
    assert.equal(classifyMailServerError(response, 'imap')?.code, 'mail_auth_rejected')
    assert.equal(oauthError?.status, '401')
    // The XOAUTH2 abort is an empty line (PROVIDERS.md, SASL).
    assert.ok(server.commands.includes(''))
  })

  it('when OAUTHBEARER is offered, then the attempt records the host and port the client claimed', async () => {
    const server = await imapServer({ onAuthenticate: 'ok', mechanisms: ['XOAUTH2', 'OAUTHBEARER'] })
    const client = imapClient(server)
    await client.connect()
    await client.logout()
    assert.deepEqual(server.authAttempts, [
      { mechanism: 'OAUTHBEARER', user: USER, token: TOKEN, host: '127.0.0.1', port: String(server.port) },
    ])
  })

  it('when onAuthenticate is a function, then each attempt gets its own outcome', async () => {
    const server = await imapServer({
      onAuthenticate: (_attempt, index) => (index === 0 ? 'rejected' : 'ok'),
    })
    await connectError(server)
    const client = imapClient(server)
    await client.connect()
    await client.logout()
    assert.equal(server.authAttempts.length, 2)
  })
})

describe('fake token endpoint', () => {
  async function endpoint(script: TokenScript): Promise<FakeTokenEndpoint> {
    const server = await startFakeTokenEndpoint(script)
    stoppers.push(() => server.close())
    return server
  }
  const refresh = (url: string, init: RequestInit = {}): Promise<Response> =>
    fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        // client_secret_basic for client "client", secret "s:cret" (form-encoded first, RFC 6749 2.3.1)
        authorization: 'Basic Y2xpZW50OnMlM0FjcmV0',
      },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'rt-1' }),
      redirect: 'manual',
      ...init,
    })

  it('when the script is an array, then each request gets the next step and the requests are recorded', async () => {
    const server = await endpoint([{ type: 'success', body: { refresh_token: 'rt-2' } }, 'invalid_grant'])
    const first = await refresh(server.url)
    assert.equal(first.status, 200)
    const token = (await first.json()) as Record<string, unknown>
    assert.equal(token.token_type, 'Bearer')
    assert.equal(token.refresh_token, 'rt-2')
    assert.equal(typeof token.access_token, 'string')
    const second = await refresh(server.url)
    assert.equal(second.status, 400)
    assert.deepEqual(await second.json(), GOOGLE_INVALID_GRANT)
    assert.equal((await refresh(server.url)).status, 500, 'script exhausted')
    const [recorded] = server.tokenRequests()
    assert.equal(recorded.form.grant_type, 'refresh_token')
    assert.equal(recorded.form.refresh_token, 'rt-1')
    assert.deepEqual(recorded.basicAuth, { clientId: 'client', clientSecret: 's:cret' })
  })

  it("when Google's invalid_grant is scripted, then the body is Google's exact text", async () => {
    const server = await endpoint('invalid_grant')
    const body = (await (await refresh(server.url)).json()) as Record<string, string>
    assert.equal(body.error, 'invalid_grant')
    assert.equal(body.error_description, 'Token has been expired or revoked.')
  })

  it('when invalid_client is scripted, then the status is 401', async () => {
    const server = await endpoint('invalid_client')
    const response = await refresh(server.url)
    assert.equal(response.status, 401)
    assert.equal(((await response.json()) as Record<string, string>).error, 'invalid_client')
  })

  for (const [type, code, error] of [
    ['aadsts700082', 700082, 'invalid_grant'],
    ['aadsts50011', 50011, 'invalid_request'],
  ] as const) {
    it(`when Microsoft ${type} is scripted, then the body has error_codes, correlation_id and the AADSTS text`, async () => {
      const server = await endpoint(type)
      const response = await refresh(server.url)
      assert.equal(response.status, 400)
      const body = (await response.json()) as Record<string, unknown>
      assert.equal(body.error, error)
      assert.deepEqual(body.error_codes, [code])
      assert.equal(body.correlation_id, FAKE_CORRELATION_ID)
      assert.match(String(body.error_description), new RegExp(`^AADSTS${code}: `))
    })
  }

  it('when HTTP 500 is scripted, then the answer is a 500 with an HTML body', async () => {
    const server = await endpoint('http_500')
    const response = await refresh(server.url)
    assert.equal(response.status, 500)
    assert.match(response.headers.get('content-type') ?? '', /text\/html/)
  })

  it('when a hang is scripted, then the request never gets an answer and the client times out', async () => {
    const server = await endpoint('hang')
    await assert.rejects(refresh(server.url, { signal: AbortSignal.timeout(200) }), { name: 'TimeoutError' })
    assert.equal(server.tokenRequests().length, 1)
  })

  it('when a redirect is scripted, then a client that does not follow it never reaches /elsewhere', async () => {
    const server = await endpoint('redirect')
    const response = await refresh(server.url)
    assert.equal(response.status, 307)
    assert.equal(response.headers.get('location'), `http://127.0.0.1:${server.port}/elsewhere`)
    assert.deepEqual(
      server.requests.map((r) => r.path),
      ['/token'],
    )
  })
})
