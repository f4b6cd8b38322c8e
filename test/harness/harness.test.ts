// Smoke tests of the real-server harness. Run with TLS verification on:
//   NODE_EXTRA_CA_CERTS=$(npx tsx test/harness/pki.ts) node --import tsx --test test/harness/harness.test.ts
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import tls from 'node:tls'
import { after, before, describe, test } from 'node:test'
import { ImapFlow } from 'imapflow'
import nodemailer from 'nodemailer'
import pg from 'pg'
import {
  createTestDatabase,
  ensureTestPki,
  launchBrowser,
  MICROSOFT_MAIL_SCOPES,
  startDovecot,
  startOAuthServer,
  startSmtpSink,
} from './index.ts'
import type { DovecotServer, OAuthServer, SmtpSink } from './index.ts'

const USER = 'alice@example.com'
const CALLBACK = 'http://127.0.0.1:9/oauth/callback'
const WEB_CLIENT = { client_id: 'deskmail-web', client_secret: randomBytes(16).toString('hex') }

let oauth: OAuthServer
let dovecot: DovecotServer
let smtp: SmtpSink

before(async () => {
  // Our product never disables TLS verification, and neither do these tests.
  assert.equal(
    process.env.NODE_EXTRA_CA_CERTS,
    ensureTestPki().caCertPath,
    'run with NODE_EXTRA_CA_CERTS=$(npx tsx test/harness/pki.ts)',
  )
  oauth = await startOAuthServer()
  oauth.registerClient({ ...WEB_CLIENT, redirect_uris: [CALLBACK] })
  const introspection = {
    introspectionUrl: oauth.introspectionUrl,
    clientId: oauth.introspectionClient.id,
    clientSecret: oauth.introspectionClient.secret,
  }
  ;[dovecot, smtp] = await Promise.all([startDovecot({ oauth: introspection }), startSmtpSink(introspection)])
})

after(async () => {
  await Promise.all([dovecot?.stop(), smtp?.stop()])
  await oauth?.stop()
})

async function imapLogin(accessToken: string, options: { user?: string; secure?: boolean } = {}) {
  const secure = options.secure ?? true
  const client = new ImapFlow({
    host: dovecot.host,
    port: secure ? dovecot.imapsPort : dovecot.imapPort,
    secure,
    auth: { user: options.user ?? USER, accessToken },
    logger: false,
  })
  await client.connect()
  return client
}

async function assertImapRefused(accessToken: string): Promise<void> {
  await assert.rejects(imapLogin(accessToken), (err: Error & { authenticationFailed?: boolean }) => {
    assert.equal(err.authenticationFailed, true)
    return true
  })
}

describe('Dovecot with OAuth 2.0 introspection', () => {
  test('when an IMAP client logs in over TLS with a token from the stand-in, then it sees the delivered mail', async () => {
    await dovecot.deliver(USER, 'From: bob@example.net\r\nSubject: first\r\n\r\nHello\r\n')
    const tokens = await oauth.issueTokens({ clientId: WEB_CLIENT.client_id, email: USER })
    const client = await imapLogin(tokens.access_token)
    try {
      const mailbox = await client.mailboxOpen('INBOX')
      assert.equal(mailbox.exists, 1)
      const message = await client.fetchOne('1', { envelope: true })
      assert.ok(message)
      assert.equal(message.envelope?.subject, 'first')
    } finally {
      await client.logout()
    }
  })

  test('when an IMAP client logs in on the plain port, then STARTTLS is used and a Microsoft-scoped token works', async () => {
    const tokens = await oauth.issueTokens({
      clientId: WEB_CLIENT.client_id,
      email: USER,
      scope: `${MICROSOFT_MAIL_SCOPES[0]} offline_access`,
    })
    const client = await imapLogin(tokens.access_token, { secure: false })
    try {
      assert.equal(client.secureConnection, true)
    } finally {
      await client.logout()
    }
  })

  test('when the bearer token is unknown, then the IMAP login is refused', async () => {
    await assertImapRefused('not-a-token')
  })

  test('when a refresh token is used as the bearer, then the IMAP login is refused', async () => {
    const tokens = await oauth.issueTokens({ clientId: WEB_CLIENT.client_id, email: USER })
    await assertImapRefused(tokens.refresh_token)
  })

  test('when the user revoked access, then the IMAP login with the old token is refused', async () => {
    const email = 'revoked@example.com'
    const tokens = await oauth.issueTokens({ clientId: WEB_CLIENT.client_id, email })
    const client = await imapLogin(tokens.access_token, { user: email })
    await client.logout()
    assert.ok(oauth.revokeAll(email) > 0)
    await assert.rejects(imapLogin(tokens.access_token, { user: email }), { authenticationFailed: true })
  })

  test('when resetUidValidity is called, then the folder keeps its mail under a new UIDVALIDITY', async () => {
    const email = 'uidvalidity@example.com'
    const token = (await oauth.issueTokens({ clientId: WEB_CLIENT.client_id, email })).access_token
    await dovecot.bulkLoad(
      email,
      Array.from({ length: 50 }, (_, i) => Buffer.from(`Subject: bulk ${i}\r\n\r\nbody ${i}\r\n`)),
    )
    await dovecot.deliver(email, 'Subject: archived\r\n\r\nx\r\n', 'Archive')
    const first = await imapLogin(token, { user: email })
    const before = await first.mailboxOpen('INBOX')
    assert.equal(before.exists, 50)
    const archive = await first.status('Archive', { messages: true })
    assert.ok(archive)
    assert.equal(archive.messages, 1)
    await first.logout()

    await dovecot.resetUidValidity(email)
    const second = await imapLogin(token, { user: email })
    try {
      const afterReset = await second.mailboxOpen('INBOX')
      assert.equal(afterReset.exists, 50)
      assert.notEqual(afterReset.uidValidity, before.uidValidity)
    } finally {
      await second.logout()
    }
  })
  test('when Dovecot restarts, then open sessions are dropped and the mail is still there', async () => {
    const email = 'restart@example.com'
    const token = (await oauth.issueTokens({ clientId: WEB_CLIENT.client_id, email })).access_token
    await dovecot.deliver(email, 'Subject: kept\r\n\r\nx\r\n')
    const before = await imapLogin(token, { user: email })
    const closed = once(before, 'close')
    await dovecot.restart()
    await closed
    const after = await imapLogin(token, { user: email })
    try {
      assert.equal((await after.mailboxOpen('INBOX')).exists, 1)
    } finally {
      await after.logout()
    }
  })
})

/** Minimal line-oriented POP3 conversation over implicit TLS. */
async function pop3Session(): Promise<{ command(line: string): Promise<string>; close(): void }> {
  const socket = tls.connect({ host: dovecot.host, port: dovecot.pop3sPort })
  await once(socket, 'secureConnect')
  socket.setEncoding('utf8')
  let buffer = ''
  const waiters: Array<(line: string) => void> = []
  socket.on('data', (chunk: string) => {
    buffer += chunk
    let index
    while ((index = buffer.indexOf('\r\n')) >= 0) {
      const line = buffer.slice(0, index)
      buffer = buffer.slice(index + 2)
      waiters.shift()?.(line)
    }
  })
  const nextLine = () => new Promise<string>((resolve) => waiters.push(resolve))
  assert.match(await nextLine(), /^\+OK/)
  return {
    command: (line) => {
      const reply = nextLine()
      socket.write(`${line}\r\n`)
      return reply
    },
    close: () => socket.destroy(),
  }
}

const xoauth2 = (user: string, token: string) =>
  Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString('base64')

describe('POP3 XOAUTH2', () => {
  test('when AUTH XOAUTH2 carries a valid token, then POP3 answers +OK', async () => {
    const token = (await oauth.issueTokens({ clientId: WEB_CLIENT.client_id, email: USER })).access_token
    const pop3 = await pop3Session()
    try {
      assert.match(await pop3.command(`AUTH XOAUTH2 ${xoauth2(USER, token)}`), /^\+OK/)
      assert.match(await pop3.command('STAT'), /^\+OK \d+ \d+/)
    } finally {
      pop3.close()
    }
  })

  test('when AUTH XOAUTH2 carries a bad token, then POP3 sends a JSON challenge and then -ERR', async () => {
    const pop3 = await pop3Session()
    try {
      const challenge = await pop3.command(`AUTH XOAUTH2 ${xoauth2(USER, 'bad-token')}`)
      assert.match(challenge, /^\+ /)
      const details = JSON.parse(Buffer.from(challenge.slice(2), 'base64').toString('utf8'))
      assert.equal(details.status, '401')
      assert.match(await pop3.command(''), /^-ERR/)
    } finally {
      pop3.close()
    }
  })
})

describe('SMTP sink', () => {
  const transport = (accessToken: string) =>
    nodemailer.createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: false,
      requireTLS: true,
      auth: { type: 'OAuth2', user: USER, accessToken },
    })

  test('when nodemailer sends with a valid XOAUTH2 token over STARTTLS, then the sink records the message', async () => {
    const token = (await oauth.issueTokens({ clientId: WEB_CLIENT.client_id, email: USER })).access_token
    const mailer = transport(token)
    try {
      await mailer.sendMail({ from: USER, to: 'customer@example.org', subject: 'smoke', text: 'hi' })
    } finally {
      mailer.close()
    }
    const message = await smtp.waitForMessage((m) => m.raw.toString().includes('Subject: smoke'), 2_000)
    assert.equal(message.authUser, USER)
    assert.deepEqual(message.to, ['customer@example.org'])
    assert.equal(message.from, USER)
  })

  test('when the XOAUTH2 token is bad, then the sink refuses with 535 and records nothing', async () => {
    const before = smtp.messages.length
    const mailer = transport('bad-token')
    try {
      await assert.rejects(
        mailer.sendMail({ from: USER, to: 'customer@example.org', subject: 'refused', text: 'x' }),
        { responseCode: 535 },
      )
    } finally {
      mailer.close()
    }
    assert.equal(smtp.messages.length, before)
  })

  test('when the sink is set down, then a connection gets 421', async () => {
    smtp.setDown(true)
    const token = (await oauth.issueTokens({ clientId: WEB_CLIENT.client_id, email: USER })).access_token
    const mailer = transport(token)
    try {
      await assert.rejects(
        mailer.sendMail({ from: USER, to: 'customer@example.org', subject: 'down', text: 'x' }),
        { responseCode: 421 },
      )
    } finally {
      mailer.close()
      smtp.setDown(false)
    }
  })
})

/** Builds an authorization request with PKCE; returns the URL and the verifier. */
function authorizationRequest(params: Record<string, string>): { url: string; verifier: string } {
  const verifier = randomBytes(32).toString('base64url')
  const url = new URL(oauth.authorizationUrl)
  url.search = new URLSearchParams({
    client_id: WEB_CLIENT.client_id,
    response_type: 'code',
    redirect_uri: CALLBACK,
    state: 'state-1',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    ...params,
  }).toString()
  return { url: url.href, verifier }
}

async function tokenRequest(params: Record<string, string>): Promise<Record<string, string>> {
  const response = await fetch(oauth.tokenUrl, { method: 'POST', body: new URLSearchParams(params) })
  const body = (await response.json()) as Record<string, string>
  return { status: String(response.status), ...body }
}

async function introspect(token: string): Promise<{ active: boolean; email?: string }> {
  const { id, secret } = oauth.introspectionClient
  const response = await fetch(oauth.introspectionUrl, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` },
    body: new URLSearchParams({ token }),
  })
  return (await response.json()) as { active: boolean; email?: string }
}

describe('OAuth stand-in', () => {
  test('when the headless login and consent complete, then the code exchanges (PKCE) for tokens with a refresh token', async () => {
    const { url, verifier } = authorizationRequest({
      scope: 'openid email https://mail.google.com/',
      access_type: 'offline',
    })
    const callback = new URL(await oauth.authorizeHeadless(url, { login: 'consenter@example.com' }))
    assert.equal(`${callback.origin}${callback.pathname}`, CALLBACK)
    assert.equal(callback.searchParams.get('state'), 'state-1')
    const code = callback.searchParams.get('code')
    assert.ok(code)

    const tokens = await tokenRequest({
      grant_type: 'authorization_code',
      code,
      redirect_uri: CALLBACK,
      code_verifier: verifier,
      ...WEB_CLIENT,
    })
    assert.equal(tokens.status, '200')
    assert.ok(tokens.access_token)
    assert.ok(tokens.refresh_token)
    assert.equal(tokens.scope, 'https://mail.google.com/')
    const idToken = JSON.parse(Buffer.from(tokens.id_token!.split('.')[1]!, 'base64url').toString('utf8'))
    assert.equal(idToken.email, 'consenter@example.com')
    assert.equal(idToken.email_verified, true)
    assert.equal((await introspect(tokens.access_token!)).email, 'consenter@example.com')
  })

  test('when the request has neither access_type=offline nor offline_access, then no refresh token is issued', async () => {
    const { url, verifier } = authorizationRequest({ scope: 'https://mail.google.com/' })
    const code = new URL(await oauth.authorizeHeadless(url, { login: USER })).searchParams.get('code')
    assert.ok(code)
    const tokens = await tokenRequest({
      grant_type: 'authorization_code',
      code,
      redirect_uri: CALLBACK,
      code_verifier: verifier,
      ...WEB_CLIENT,
    })
    assert.equal(tokens.status, '200')
    assert.ok(tokens.access_token)
    assert.equal(tokens.refresh_token, undefined)
  })

  test('when the user refuses consent, then the callback carries error=access_denied', async () => {
    const { url } = authorizationRequest({ scope: 'https://mail.google.com/' })
    const callback = new URL(await oauth.authorizeHeadless(url, { login: USER, deny: true }))
    assert.equal(callback.searchParams.get('error'), 'access_denied')
    assert.equal(callback.searchParams.get('code'), null)
  })

  test('when a rotating (Microsoft-like) client refreshes, then it gets a new refresh token and the used one dies', async () => {
    const client = { client_id: 'ms-like', client_secret: randomBytes(16).toString('hex') }
    oauth.registerClient({ ...client, redirect_uris: [CALLBACK], rotateRefreshTokens: true })
    const issued = await oauth.issueTokens({
      clientId: client.client_id,
      email: USER,
      scope: `${MICROSOFT_MAIL_SCOPES.join(' ')} offline_access`,
    })
    const refresh = (token: string) =>
      tokenRequest({ grant_type: 'refresh_token', refresh_token: token, ...client })
    const first = await refresh(issued.refresh_token)
    assert.equal(first.status, '200')
    assert.ok(first.refresh_token)
    assert.notEqual(first.refresh_token, issued.refresh_token)
    assert.equal((await refresh(issued.refresh_token)).error, 'invalid_grant')
  })

  test('when a client has a 1-second access token TTL, then its token is inactive after it expires', async () => {
    const client = { client_id: 'short-lived', client_secret: randomBytes(16).toString('hex') }
    oauth.registerClient({ ...client, redirect_uris: [CALLBACK], accessTokenTTL: 1 })
    const issued = await oauth.issueTokens({ clientId: client.client_id, email: USER })
    assert.equal(issued.expires_in, 1)
    assert.equal((await introspect(issued.access_token)).active, true)
    await new Promise((resolve) => setTimeout(resolve, 2_100))
    assert.equal((await introspect(issued.access_token)).active, false)
    const refreshed = await tokenRequest({
      grant_type: 'refresh_token',
      refresh_token: issued.refresh_token,
      ...client,
    })
    assert.equal(Number(refreshed.expires_in), 1)
    assert.equal((await introspect(refreshed.access_token!)).active, true)
  })
})

describe('Chromium', () => {
  test('when a local page is opened, then its title is read and non-loopback hosts stay unreachable', async () => {
    const server = http.createServer((_req, res) => {
      res.setHeader('content-type', 'text/html')
      res.end('<!doctype html><title>deskmail harness</title><p>ok</p>')
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const browser = await launchBrowser()
    try {
      await browser.page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)
      assert.equal(await browser.page.title(), 'deskmail harness')
      await assert.rejects(browser.page.goto('http://example.com/'))
    } finally {
      await browser.close()
      server.close()
    }
  })
})

describe('PostgreSQL', () => {
  test('when a test database is created, then it is reachable, and after drop it is gone', async () => {
    const db = await createTestDatabase()
    const client = new pg.Client({ connectionString: db.url })
    try {
      await client.connect()
      const { rows } = await client.query<{ name: string }>('SELECT current_database() AS name')
      assert.equal(rows[0]?.name, db.name)
    } finally {
      await client.end()
    }
    await db.drop()
    const again = new pg.Client({ connectionString: db.url })
    await assert.rejects(again.connect(), { code: '3D000' })
    await again.end().catch(() => {})
  })
})
