// Our POP3 client against a real Dovecot 2.3 (POP3S and POP3 + STLS) whose XOAUTH2 tokens are checked
// by introspection at the oidc-provider stand-in (test/harness, HARNESS.md).
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import { Pop3Client } from '../../src/mail/pop3/index.ts'
import { isAppError } from '../../src/shared/errors.ts'
import { startDovecot } from '../harness/dovecot.ts'
import type { DovecotServer } from '../harness/dovecot.ts'
import { startOAuthServer } from '../harness/oauth-server.ts'
import type { OAuthServer } from '../harness/oauth-server.ts'
import { ensureTestPki } from '../harness/pki.ts'

const USER = 'pop-user@example.com'
const CLIENT = {
  client_id: 'deskmail-pop3-test',
  client_secret: 'pop3-test-secret',
  redirect_uris: ['http://127.0.0.1:9/cb'],
}

let oauth: OAuthServer
let dovecot: DovecotServer
// test/run.sh trusts the test CA through NODE_EXTRA_CA_CERTS, the production way; a file run on its
// own passes the CA explicitly instead. Verification is on in both cases.
const pki = ensureTestPki()
const ca =
  process.env.NODE_EXTRA_CA_CERTS === pki.caCertPath ? undefined : readFileSync(pki.caCertPath, 'utf8')

const messages = [
  Buffer.from('From: alice@example.net\r\nTo: pop-user@example.com\r\nSubject: first\r\n\r\nHello\r\n'),
  Buffer.from(
    'From: bob@example.net\r\nTo: pop-user@example.com\r\nSubject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nend.\r\n',
  ),
]

before(async () => {
  oauth = await startOAuthServer()
  oauth.registerClient(CLIENT)
  dovecot = await startDovecot({
    oauth: {
      introspectionUrl: oauth.introspectionUrl,
      clientId: oauth.introspectionClient.id,
      clientSecret: oauth.introspectionClient.secret,
    },
    mechanisms: ['xoauth2'],
  })
  for (const message of messages) await dovecot.deliver(USER, message)
})

after(async () => {
  await dovecot?.stop()
  await oauth?.stop()
})

function pop3s(): Promise<Pop3Client> {
  return Pop3Client.connect({ host: dovecot.host, port: dovecot.pop3sPort, security: 'tls', ca })
}

async function token(): Promise<string> {
  return (await oauth.issueTokens({ clientId: CLIENT.client_id, email: USER })).access_token
}

describe('POP3 client against Dovecot', () => {
  it('when logging in over POP3S with XOAUTH2, then UIDL and RETR give the delivered messages byte for byte, and DELE + QUIT removes one', async () => {
    const client = await pop3s()
    assert.equal(client.secure, true)
    assert.ok((await client.capabilities()).get('SASL')?.includes('XOAUTH2'))
    await client.authenticateXOAuth2(USER, await token(), { style: 'initial-response' })
    const listing = await client.uidl()
    assert.equal(listing.length, 2)
    assert.equal(new Set(listing.map((e) => e.uid)).size, 2, 'UIDs are unique')
    for (const { msg } of listing) assert.deepEqual(await client.retr(msg), messages[msg - 1])
    await client.dele(1)
    await client.quit()

    const again = await pop3s()
    await again.authenticateXOAuth2(USER, await token())
    const after = await again.uidl()
    assert.deepEqual(
      after.map((e) => e.uid),
      [listing[1].uid],
      'the deleted message is gone and the other keeps its UID',
    )
    await again.quit()
  })

  it('when logging in on the plain port with STLS and the two-step AUTH, then the session works', async () => {
    const client = await Pop3Client.connect({
      host: dovecot.host,
      port: dovecot.pop3Port,
      security: 'starttls',
      ca,
    })
    assert.equal(client.secure, true)
    await client.authenticateXOAuth2(USER, await token(), { style: 'two-step' })
    assert.equal((await client.stat()).count, 1)
    await client.quit()
  })

  it('when the token is not valid, then Dovecot sends the error challenge and the client reports pop3_auth_failed with status 401', async () => {
    const client = await pop3s()
    await assert.rejects(client.authenticateXOAuth2(USER, 'not-a-valid-token-at-all'), (err) => {
      assert.ok(isAppError(err, 'pop3_auth_failed'), String(err))
      assert.equal(err.details.status, '401')
      assert.equal(err.details.classification, 'mail_auth_rejected')
      assert.ok(!err.message.includes('not-a-valid-token-at-all'))
      return true
    })
    client.close()
  })
})
