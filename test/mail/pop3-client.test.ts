import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { after, before, describe, it } from 'node:test'
import { Pop3Client } from '../../src/mail/pop3/index.ts'
import { xoauth2InitialResponse } from '../../src/mail/sasl.ts'
import { AppError, isAppError } from '../../src/shared/errors.ts'
import { FAKE_VALID_TOKEN, startFakePop3Server } from '../fakes/fake-pop3-server.ts'
import type { FakePop3Options, FakePop3Server } from '../fakes/fake-pop3-server.ts'

const USER = 'support@example.com'
const BAD_TOKEN = 'ya29.expired-token-that-must-never-be-shown'

const servers: FakePop3Server[] = []
async function fake(options: FakePop3Options = {}): Promise<FakePop3Server> {
  const server = await startFakePop3Server(options)
  servers.push(server)
  return server
}
after(async () => {
  await Promise.all(servers.map((s) => s.close()))
})

function connect(server: FakePop3Server, extra: { timeoutMs?: number } = {}): Promise<Pop3Client> {
  const options = { host: server.host, port: server.port, security: 'none', timeoutMs: 5_000 } as const
  return Pop3Client.connect({ ...options, ...extra })
}

/** Asserts an AppError with `code`, and returns it for more checks. */
async function rejectsWith(promise: Promise<unknown>, code: string): Promise<AppError> {
  let caught: unknown
  await assert.rejects(promise, (err) => {
    caught = err
    return true
  })
  assert.ok(isAppError(caught), `expected an AppError, got ${String(caught)}`)
  assert.equal(caught.code, code, caught.message)
  return caught
}

const withDots = Buffer.from(
  [
    'Return-Path: <a@example.com>',
    'Subject: dots',
    '',
    '.leading dot',
    '..two leading dots',
    '.',
    'a line.',
    '.\r\n.',
    '',
  ].join('\r\n'),
)

describe('POP3 client: AUTH XOAUTH2', () => {
  it('when a Gmail-style server gets the initial response, then the client is in the transaction state', async () => {
    const server = await fake({ authStyle: 'gmail' })
    const client = await connect(server)
    assert.equal(client.state, 'authorization')
    assert.deepEqual((await client.capabilities()).get('SASL'), ['XOAUTH2'])
    await client.authenticateXOAuth2(USER, FAKE_VALID_TOKEN, { style: 'initial-response' })
    assert.equal(client.state, 'transaction')
    assert.ok(server.lines.includes(`AUTH XOAUTH2 ${xoauth2InitialResponse(USER, FAKE_VALID_TOKEN)}`))
    assert.deepEqual(
      server.authAttempts.map(({ style, user, secret, accepted }) => ({ style, user, secret, accepted })),
      [{ style: 'initial-response', user: USER, secret: FAKE_VALID_TOKEN, accepted: true }],
    )
    await client.quit()
    assert.equal(client.state, 'closed')
  })

  it('when a Microsoft-style server wants two steps, then AUTH XOAUTH2, "+", and the response on its own line succeed', async () => {
    const server = await fake({ authStyle: 'microsoft' })
    const client = await connect(server)
    await client.authenticateXOAuth2(USER, FAKE_VALID_TOKEN, { style: 'two-step' })
    assert.equal(client.state, 'transaction')
    const auth = server.lines.indexOf('AUTH XOAUTH2')
    assert.ok(auth >= 0, 'AUTH XOAUTH2 sent alone')
    assert.equal(server.lines[auth + 1], xoauth2InitialResponse(USER, FAKE_VALID_TOKEN))
    await client.quit()
  })

  it('when a Microsoft-style server gets an initial response, then the client reports pop3_auth_failed', async () => {
    const server = await fake({ authStyle: 'microsoft' })
    const client = await connect(server)
    await rejectsWith(
      client.authenticateXOAuth2(USER, FAKE_VALID_TOKEN, { style: 'initial-response' }),
      'pop3_auth_failed',
    )
    assert.equal(client.state, 'authorization')
    client.close()
  })

  for (const authStyle of ['gmail', 'microsoft'] as const) {
    const style = authStyle === 'gmail' ? 'initial-response' : 'two-step'
    it(`when a ${authStyle}-style server refuses the token with an error challenge, then the client answers an empty line and reports the challenge`, async () => {
      const server = await fake({ authStyle })
      const client = await connect(server)
      const err = await rejectsWith(
        client.authenticateXOAuth2(USER, BAD_TOKEN, { style }),
        'pop3_auth_failed',
      )
      assert.equal(err.details.status, '401')
      assert.equal(err.details.scope, authStyle === 'gmail' ? 'https://mail.google.com/' : 'mail')
      assert.equal(err.details.classification, 'mail_auth_rejected')
      assert.match(err.message, /-ERR/)
      const secret = xoauth2InitialResponse(USER, BAD_TOKEN)
      assert.ok(!err.message.includes(BAD_TOKEN) && !err.message.includes(secret))
      assert.ok(!JSON.stringify(err.details).includes(BAD_TOKEN))
      // The last line the client sent is the empty answer to the challenge.
      assert.equal(server.lines.at(-1), '')
      // RFC 5034: a failed AUTH leaves the session in AUTHORIZATION, so a fresh token may be tried.
      assert.equal(client.state, 'authorization')
      await client.authenticateXOAuth2(USER, FAKE_VALID_TOKEN, { style })
      assert.equal(client.state, 'transaction')
      await client.quit()
    })
  }

  it('when the server refuses without a challenge, then the error has no challenge details', async () => {
    const server = await fake({ errorChallenge: false, authErrorLine: '-ERR [SYS/TEMP] Try again later.' })
    const client = await connect(server)
    const err = await rejectsWith(client.authenticateXOAuth2(USER, BAD_TOKEN), 'pop3_auth_failed')
    assert.equal(err.details.status, undefined)
    assert.equal(err.details.responseCode, 'SYS/TEMP')
    assert.equal(err.transient, true)
    client.close()
  })

  it('when USER/PASS is refused, then pop3_auth_failed carries the server text and not the password', async () => {
    const server = await fake({ users: { alice: 'right password' } })
    const client = await connect(server)
    const err = await rejectsWith(client.login('alice', 'wrong password'), 'pop3_auth_failed')
    assert.match(err.message, /\[AUTH\] Authentication failed/)
    assert.ok(!err.message.includes('wrong password'))
    await client.login('alice', 'right password')
    assert.equal(client.state, 'transaction')
    await client.quit()
  })
})

describe('POP3 client: mailbox commands', () => {
  it('when listing and retrieving, then UIDL, LIST, STAT and RETR match the mailbox byte for byte', async () => {
    const messages = [
      { uid: 'GmailId1a2b', body: Buffer.from('Subject: one\r\n\r\nfirst\r\n') },
      { uid: 'GmailId3c4d', body: withDots },
      { uid: 'AAAA-zz_99', body: Buffer.from('Subject: three\r\n\r\n\r\n') },
    ]
    const server = await fake({ messages })
    const client = await connect(server)
    await client.authenticateXOAuth2(USER, FAKE_VALID_TOKEN)
    assert.deepEqual(await client.uidl(), [
      { msg: 1, uid: 'GmailId1a2b' },
      { msg: 2, uid: 'GmailId3c4d' },
      { msg: 3, uid: 'AAAA-zz_99' },
    ])
    assert.deepEqual(
      await client.list(),
      messages.map((m, i) => ({ msg: i + 1, size: m.body.length })),
    )
    assert.deepEqual(await client.stat(), { count: 3, size: messages.reduce((s, m) => s + m.body.length, 0) })
    for (const [i, m] of messages.entries()) {
      const raw = await client.retr(i + 1)
      assert.ok(Buffer.isBuffer(raw))
      assert.deepEqual(raw, m.body, `message ${i + 1}`)
    }
    await client.noop()
    await client.quit()
  })

  it('when a message is marked with DELE, then only QUIT removes it', async () => {
    const server = await fake({ messages: ['a\r\n', 'b\r\n', 'c\r\n'] })
    const first = await connect(server)
    await first.authenticateXOAuth2(USER, FAKE_VALID_TOKEN)
    await first.dele(2)
    first.close()
    assert.equal(server.mailbox().length, 3, 'no QUIT: nothing removed')

    const second = await connect(server)
    await second.authenticateXOAuth2(USER, FAKE_VALID_TOKEN)
    await second.dele(2)
    assert.deepEqual(
      (await second.uidl()).map((e) => e.uid),
      ['uid-1', 'uid-3'],
    )
    await second.quit()
    assert.deepEqual(server.expunged, ['uid-2'])
    assert.deepEqual(
      server.mailbox().map((m) => m.uid),
      ['uid-1', 'uid-3'],
    )
  })

  it('when a 5 MB message with many dot lines is retrieved, then the Buffer is byte-exact', async () => {
    const lines: string[] = []
    let size = 0
    for (let i = 0; size < 5 * 1024 * 1024; i++) {
      const line = `${i % 7 === 0 ? '.' : ''}${i % 11 === 0 ? '..' : ''}${randomBytes(54).toString('base64')}`
      lines.push(line)
      size += line.length + 2
    }
    const big = Buffer.from(`Subject: big\r\n\r\n${lines.join('\r\n')}\r\n`)
    const server = await fake({ messages: ['small\r\n', big] })
    const client = await connect(server)
    await client.authenticateXOAuth2(USER, FAKE_VALID_TOKEN)
    const raw = await client.retr(2)
    assert.equal(raw.length, big.length)
    assert.ok(raw.equals(big), 'RETR is byte-exact')
    // The session goes on after the body: the next answer is read correctly.
    assert.deepEqual(await client.retr(1), Buffer.from('small\r\n'))
    await client.quit()
  })

  it('when RETR names a message that does not exist, then pop3_command_failed and the session goes on', async () => {
    const server = await fake({ messages: ['a\r\n'] })
    const client = await connect(server)
    await client.authenticateXOAuth2(USER, FAKE_VALID_TOKEN)
    const err = await rejectsWith(client.retr(9), 'pop3_command_failed')
    assert.match(err.message, /RETR 9 failed: -ERR There is no such message/)
    assert.deepEqual(await client.retr(1), Buffer.from('a\r\n'))
    await client.quit()
  })

  it('when a command is called in the wrong state or with a bad argument, then it fails before anything is sent', async () => {
    const server = await fake({ messages: ['a\r\n'] })
    const client = await connect(server)
    const sent = server.lines.length
    await rejectsWith(client.retr(1), 'pop3_invalid_state')
    await client.authenticateXOAuth2(USER, FAKE_VALID_TOKEN)
    await rejectsWith(client.retr(0), 'pop3_invalid_argument')
    await rejectsWith(client.login('x', 'y'), 'pop3_invalid_state')
    assert.equal(server.lines.length, sent + 1, 'only the AUTH line went out')
    await client.quit()
  })

  it('when the server has no CAPA, then capabilities() is an empty map', async () => {
    const server = await fake({ capa: false })
    const client = await connect(server)
    assert.equal((await client.capabilities()).size, 0)
    client.close()
  })

  it('when the greeting is -ERR [SYS/TEMP], then connect fails with a transient pop3_connection_refused', async () => {
    const server = await fake({ greeting: '-ERR [SYS/TEMP] Server busy, try later.' })
    const err = await rejectsWith(connect(server), 'pop3_connection_refused')
    assert.equal(err.transient, true)
    assert.match(err.message, /Server busy/)
  })
})

describe('POP3 client: timeouts and lost connections', () => {
  it('when the server never answers RETR, then the pending call and the queued one reject with pop3_timeout', async () => {
    const server = await fake({ messages: ['a\r\n'], faults: { RETR: { hang: true } } })
    const client = await connect(server, { timeoutMs: 200 })
    await client.authenticateXOAuth2(USER, FAKE_VALID_TOKEN)
    const retr = client.retr(1)
    const queued = client.noop()
    const err = await rejectsWith(retr, 'pop3_timeout')
    assert.equal(err.transient, true)
    await rejectsWith(queued, 'pop3_timeout')
    assert.equal(client.state, 'closed')
    await rejectsWith(client.quit(), 'pop3_timeout')
  })

  it('when the server stalls in the middle of a body, then RETR rejects with pop3_timeout', async () => {
    const server = await fake({ messages: [withDots], faults: { RETR: { hangAfterBytes: 40 } } })
    const client = await connect(server, { timeoutMs: 200 })
    await client.authenticateXOAuth2(USER, FAKE_VALID_TOKEN)
    await rejectsWith(client.retr(1), 'pop3_timeout')
  })

  it('when the server never greets, then connect rejects with pop3_timeout', async () => {
    const server = await fake({ faults: { GREETING: { hang: true } } })
    await rejectsWith(connect(server, { timeoutMs: 200 }), 'pop3_timeout')
  })

  it('when the server answers slowly but within the timeout, then the call succeeds', async () => {
    const server = await fake({ messages: ['a\r\n'], faults: { UIDL: { delayMs: 150 } } })
    const client = await connect(server, { timeoutMs: 5_000 })
    await client.authenticateXOAuth2(USER, FAKE_VALID_TOKEN)
    assert.deepEqual(await client.uidl(), [{ msg: 1, uid: 'uid-1' }])
    await client.quit()
  })

  it('when the server drops the connection in the middle of a body, then RETR rejects with pop3_connection_closed', async () => {
    const server = await fake({ messages: [withDots], faults: { RETR: { closeAfterBytes: 30 } } })
    const client = await connect(server)
    await client.authenticateXOAuth2(USER, FAKE_VALID_TOKEN)
    const err = await rejectsWith(client.retr(1), 'pop3_connection_closed')
    assert.equal(err.transient, true)
  })

  it('when nothing listens on the port, then connect rejects with pop3_connection_failed', async () => {
    const probe = net.createServer()
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
    const port = (probe.address() as net.AddressInfo).port
    await new Promise<void>((resolve) => probe.close(() => resolve()))
    const err = await rejectsWith(
      Pop3Client.connect({ host: '127.0.0.1', port, security: 'none', timeoutMs: 5_000 }),
      'pop3_connection_failed',
    )
    assert.equal(err.transient, true)
  })

  it('when close() is called while a command waits, then the command rejects at once', async () => {
    const server = await fake({ messages: ['a\r\n'], faults: { RETR: { hang: true } } })
    const client = await connect(server, { timeoutMs: 60_000 })
    await client.authenticateXOAuth2(USER, FAKE_VALID_TOKEN)
    const retr = client.retr(1)
    client.close()
    await rejectsWith(retr, 'pop3_connection_closed')
  })
})

describe('POP3 client: TLS', () => {
  let otherCa = ''
  before(() => {
    // A CA that signed nothing the servers use: trusting only it must make every handshake fail.
    otherCa = execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', '/dev/null',
        '-days', '1', '-subj', '/CN=unrelated test CA'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    )
  })

  it('when the server speaks implicit TLS with a trusted certificate, then the session is secure', async () => {
    const server = await fake({ tls: true, messages: ['a\r\n'] })
    const client = await Pop3Client.connect({
      host: server.host,
      port: server.port,
      security: 'tls',
      ca: server.ca,
    })
    assert.equal(client.secure, true)
    await client.authenticateXOAuth2(USER, FAKE_VALID_TOKEN)
    assert.deepEqual(await client.retr(1), Buffer.from('a\r\n'))
    await client.quit()
  })

  it('when the certificate is not signed by a trusted CA, then connect fails with pop3_tls_failed', async () => {
    const server = await fake({ tls: true })
    const err = await rejectsWith(
      Pop3Client.connect({ host: server.host, port: server.port, security: 'tls', ca: otherCa }),
      'pop3_tls_failed',
    )
    assert.equal(err.transient, false)
  })

  it('when the certificate does not name the host, then connect fails with pop3_tls_failed', async () => {
    const server = await fake({ tls: true })
    await rejectsWith(
      Pop3Client.connect({
        host: server.host,
        port: server.port,
        security: 'tls',
        servername: 'pop.example.test',
        ca: server.ca,
      }),
      'pop3_tls_failed',
    )
  })

  it('when servername is an IP address, then the certificate is checked against it', async () => {
    const server = await fake({ tls: true })
    const options = { host: server.host, port: server.port, security: 'tls', ca: server.ca } as const
    const client = await Pop3Client.connect({ ...options, servername: '127.0.0.1' })
    assert.equal(client.secure, true)
    client.close()
    await rejectsWith(Pop3Client.connect({ ...options, servername: '127.0.0.2' }), 'pop3_tls_failed')
  })

  it('when TLS is spoken to a plain POP3 port, then connect fails with pop3_tls_failed', async () => {
    const server = await fake()
    await rejectsWith(
      Pop3Client.connect({
        host: server.host,
        port: server.port,
        security: 'tls',
        ca: server.ca,
        timeoutMs: 5_000,
      }),
      'pop3_tls_failed',
    )
  })

  it('when STLS is offered, then the session upgrades and capabilities are read again over TLS', async () => {
    const server = await fake({ stls: true, messages: ['a\r\n'] })
    const client = await Pop3Client.connect({
      host: server.host,
      port: server.port,
      security: 'starttls',
      ca: server.ca,
    })
    assert.equal(client.secure, true)
    assert.equal(server.lines[0], 'STLS', 'STLS is the first command')
    assert.equal((await client.capabilities()).has('STLS'), false)
    await client.authenticateXOAuth2(USER, FAKE_VALID_TOKEN)
    assert.deepEqual(await client.retr(1), Buffer.from('a\r\n'))
    await client.quit()
  })

  it('when the server refuses STLS, then connect fails with pop3_tls_failed instead of going on in clear', async () => {
    const server = await fake({ stls: false })
    await rejectsWith(
      Pop3Client.connect({ host: server.host, port: server.port, security: 'starttls', ca: server.ca }),
      'pop3_tls_failed',
    )
    assert.ok(!server.lines.some((l) => l.startsWith('AUTH')))
  })

  it('when data is injected after the STLS answer, then connect fails with pop3_tls_failed', async () => {
    const server = await fake({ stls: true, stlsInjection: '+OK Welcome.\r\n' })
    await rejectsWith(
      Pop3Client.connect({ host: server.host, port: server.port, security: 'starttls', ca: server.ca }),
      'pop3_tls_failed',
    )
  })
})
