import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startTestApp } from '../support/app.ts'
import type { TestApp } from '../support/app.ts'
import { CLIENT, connectIncoming, incomingForm, providerUrlFrom, registerDeskmail, startMailWorld } from '../support/mail-world.ts'
import type { MailWorld } from '../support/mail-world.ts'
import { dialects } from '../support/dialects.ts'
import { connectImap } from '../../src/mail/imap/connect.ts'

const statusOf = (html: string, mailbox: string) => {
  const row = html.split('<tr data-server-id=').find((r) => r.includes(`<td>${mailbox}`))
  return /class="status status-([a-z_]+)">([^<]+)</.exec(row ?? '')?.slice(1, 3)
}

for (const dialect of dialects) {
  describe(`Incoming Email Servers with OAuth 2.0 on ${dialect}`, () => {
    let world: MailWorld
    let app: TestApp
    before(async () => {
      world = await startMailWorld()
      app = await startTestApp({ dialect })
      registerDeskmail(world, app.url)
    })
    after(async () => {
      await app?.stop()
      await world?.stop()
    })

    it('when the admin saves an IMAP server and consents at the provider, then it is listed as Connected', async () => {
      const admin = await app.admin()
      const saved = await (async () => {
        await admin.get('/admin/support-channel/emails/incoming/new')
        return admin.postForm('/admin/support-channel/emails/incoming/new', incomingForm(world, 'help@example.test'))
      })()
      assert.equal(saved.status, 200)
      const url = new URL(providerUrlFrom(saved.text))
      assert.equal(url.origin + url.pathname, world.oauth.authorizationUrl)
      assert.equal(url.searchParams.get('response_type'), 'code')
      assert.equal(url.searchParams.get('client_id'), CLIENT.id)
      assert.equal(url.searchParams.get('redirect_uri'), `${app.url}/oauth/callback`)
      assert.equal(url.searchParams.get('code_challenge_method'), 'S256')
      assert.equal(url.searchParams.get('login_hint'), 'help@example.test')
      assert.ok((url.searchParams.get('state') ?? '').length >= 32)
      assert.match(url.searchParams.get('scope') ?? '', /https:\/\/mail\.google\.com\//)
      assert.match(saved.text, /<meta http-equiv="refresh" content="0;url=/)

      const callback = await world.oauth.authorizeHeadless(url.toString(), { login: 'help@example.test' })
      const back = await admin.get(new URL(callback).pathname + new URL(callback).search)
      assert.equal(back.status, 303)
      assert.equal(back.location, '/admin/support-channel/emails')
      const list = await admin.get(back.location!)
      assert.match(list.text, /is connected/)
      assert.deepEqual(statusOf(list.text, 'help@example.test'), ['connected', 'Connected'])

      // Tokens are stored encrypted and never shown.
      const creds = await app.services.storage.db.selectFrom('credentials').selectAll().execute()
      const c = creds.find((x) => x.status === 'connected')!
      assert.match(c.refresh_token_enc ?? '', /^dm1\./)
      assert.ok(!list.text.includes(CLIENT.secret))
      const edit = await admin.get(`/admin/support-channel/emails/servers/${list.text.match(/data-server-id="(\d+)"/)![1]}/edit`)
      assert.ok(!edit.text.includes(CLIENT.secret))
      assert.match(edit.text, /A secret is set/)
    })

    it('when the mailbox is POP3, then the same flow connects it with XOAUTH2', async () => {
      const admin = await app.admin()
      const { page } = await connectIncoming(world, admin, incomingForm(world, 'pop@example.test', { protocol: 'pop3' }))
      assert.deepEqual(statusOf(page.text, 'pop@example.test'), ['connected', 'Connected'])
    })

    it('when another account consents, then the admin reads which account signed in instead', async () => {
      const admin = await app.admin()
      const { page } = await connectIncoming(world, admin, incomingForm(world, 'sales@example.test'), 'someone.else@example.test')
      assert.match(page.text, /Signed in as someone\.else@example\.test, but this server is for sales@example\.test/)
      assert.notEqual(statusOf(page.text, 'sales@example.test')?.[0], 'connected')
    })

    it('when the admin declines consent, then the server stays unauthorized with a plain explanation', async () => {
      const admin = await app.admin()
      await admin.get('/admin/support-channel/emails/incoming/new')
      const saved = await admin.postForm('/admin/support-channel/emails/incoming/new', incomingForm(world, 'declined@example.test'))
      const callback = await world.oauth.authorizeHeadless(providerUrlFrom(saved.text), { login: 'declined@example.test', deny: true })
      assert.match(callback, /error=access_denied/)
      const page = await admin.follow(admin.get(new URL(callback).pathname + new URL(callback).search))
      assert.match(page.text, /declined|denied|refused/i)
      assert.equal(statusOf(page.text, 'declined@example.test')?.[0], 'pending_authorization')
    })

    it('when a callback is forged, replayed, expired or from another session, then it is refused with a clear page', async () => {
      const admin = await app.admin()
      // Forged state.
      const forged = await admin.get('/oauth/callback?code=abc&state=forged-state-value')
      assert.equal(forged.status, 400)
      assert.match(forged.text, /not one deskmail asked for/)

      // Replayed: the first use connects, the second is refused.
      const { callback } = await connectIncoming(world, admin, incomingForm(world, 'replay@example.test'))
      const again = await admin.follow(admin.get(new URL(callback).pathname + new URL(callback).search))
      assert.match(again.text, /used already/)

      // Another admin session (same user, new sign-in) cannot complete this one's authorization.
      await admin.get('/admin/support-channel/emails/incoming/new')
      const saved = await admin.postForm('/admin/support-channel/emails/incoming/new', incomingForm(world, 'session@example.test'))
      const cb = await world.oauth.authorizeHeadless(providerUrlFrom(saved.text), { login: 'session@example.test' })
      const other = await app.admin()
      const stolen = await other.get(new URL(cb).pathname + new URL(cb).search)
      assert.equal(stolen.status, 400)
      assert.match(stolen.text, /started in another browser session/)

      // Expired.
      await admin.get('/admin/support-channel/emails/incoming/new')
      const saved2 = await admin.postForm('/admin/support-channel/emails/incoming/new', incomingForm(world, 'late@example.test'))
      const cb2 = await world.oauth.authorizeHeadless(providerUrlFrom(saved2.text), { login: 'late@example.test' })
      await app.services.storage.db.updateTable('oauth_authorizations').set({ expires_at: Date.now() - 1000 }).where('used_at', 'is', null).execute()
      const late = await admin.follow(admin.get(new URL(cb2).pathname + new URL(cb2).search))
      assert.match(late.text, /expired/)
    })

    it('when form values are bad, then each field gets its message and the typed values stay', async () => {
      const admin = await app.admin()
      await admin.get('/admin/support-channel/emails/incoming/new')
      const res = await admin.postForm(
        '/admin/support-channel/emails/incoming/new',
        incomingForm(world, 'not-an-address', {
          name: '',
          port: '70000',
          token_url: 'http://idp.example.com/token',
          authorization_url: 'https://10.1.2.3/authorize',
          client_id: '',
        }),
      )
      assert.equal(res.status, 400)
      const err = (f: string) => new RegExp(`id="f-${f}-error">([^<]+)<`).exec(res.text)?.[1]
      assert.match(err('name') ?? '', /Enter a name/)
      assert.match(err('email_address') ?? '', /valid email address/)
      assert.match(err('port') ?? '', /between 1 and 65535/)
      assert.match(err('token_url') ?? '', /https/i)
      assert.match(err('authorization_url') ?? '', /private|DESKMAIL_ALLOWED_PRIVATE_HOSTS/)
      assert.match(err('client_id') ?? '', /Client ID/)
      assert.match(res.text, /value="not-an-address"/)
      assert.match(res.text, /value="http:\/\/idp\.example\.com\/token"/)
      assert.ok(!res.text.includes(CLIENT.secret), 'the secret is not echoed back')
    })

    it('when the Google client JSON is imported, then it fills the client fields, and a desktop client is refused', async () => {
      const admin = await app.admin()
      await admin.get('/admin/support-channel/emails/incoming/new')
      const web = JSON.stringify({
        web: {
          client_id: '1234-abc.apps.googleusercontent.com',
          project_id: 'helpdesk-123',
          auth_uri: 'https://accounts.google.com/o/oauth2/auth',
          token_uri: 'https://oauth2.googleapis.com/token',
          client_secret: 'GOCSPX-json-secret',
          redirect_uris: [`${app.url}/oauth/callback`],
        },
      })
      const filled = await admin.postForm('/admin/support-channel/emails/incoming/new', { ...incomingForm(world, 'g@example.test'), client_json: web, action: 'import', client_id: '' })
      assert.equal(filled.status, 200)
      assert.match(filled.text, /value="1234-abc\.apps\.googleusercontent\.com"/)
      assert.match(filled.text, /value="https:\/\/oauth2\.googleapis\.com\/token"/)
      assert.match(filled.text, /Filled Client ID/)
      const installed = JSON.stringify({ installed: { client_id: 'x', client_secret: 'y', auth_uri: 'https://accounts.google.com/o/oauth2/auth', token_uri: 'https://oauth2.googleapis.com/token' } })
      const refused = await admin.postForm('/admin/support-channel/emails/incoming/new', { ...incomingForm(world, 'g@example.test'), client_json: installed, action: 'import' })
      assert.equal(refused.status, 400)
      assert.match(refused.text, /id="f-client_json-error">[^<]*(Desktop|installed)/)
    })

    it('when the refresh token is revoked, then Reconnect authorizes again and the server is Connected', async () => {
      const admin = await app.admin()
      const { page } = await connectIncoming(world, admin, incomingForm(world, 'revoked@example.test'))
      assert.deepEqual(statusOf(page.text, 'revoked@example.test'), ['connected', 'Connected'])
      const server = (await app.services.emailServers.list()).find((s) => s.emailAddress === 'revoked@example.test')!
      world.oauth.revokeAll('revoked@example.test')
      // Force a refresh: the stored access token is made to look expired.
      await app.services.storage.db.updateTable('credentials').set({ access_token_expires_at: Date.now() - 1000 }).where('id', '=', server.credentialId!).execute()
      await admin.postForm(`/admin/support-channel/emails/servers/${server.id}/test`, {})
      const list = await admin.get('/admin/support-channel/emails')
      assert.deepEqual(statusOf(list.text, 'revoked@example.test'), ['needs_reauthorization', 'Needs re-authorization'])
      assert.match(list.text, /Reconnect/)
      const reconnect = await admin.postForm(`/admin/support-channel/emails/servers/${server.id}/reconnect`, {})
      const cb = await world.oauth.authorizeHeadless(providerUrlFrom(reconnect.text), { login: 'revoked@example.test' })
      const after = await admin.follow(admin.get(new URL(cb).pathname + new URL(cb).search))
      assert.deepEqual(statusOf(after.text, 'revoked@example.test'), ['connected', 'Connected'])
    })

    it('when the client of a connected server is edited, then it must be authorized again, and a name change does not', async () => {
      const admin = await app.admin()
      const { page } = await connectIncoming(world, admin, incomingForm(world, 'edit@example.test'))
      assert.deepEqual(statusOf(page.text, 'edit@example.test'), ['connected', 'Connected'])
      const server = (await app.services.emailServers.list()).find((s) => s.emailAddress === 'edit@example.test')!
      await admin.get(`/admin/support-channel/emails/servers/${server.id}/edit`)
      const renamed = await admin.postForm(`/admin/support-channel/emails/servers/${server.id}/edit`, {
        ...incomingForm(world, 'edit@example.test', { name: 'Renamed desk', client_secret: '' }),
      })
      assert.equal(renamed.status, 303, 'no new consent for a rename (the secret left empty keeps the stored one)')
      const list = await admin.get('/admin/support-channel/emails')
      assert.match(list.text, /Renamed desk/)
      assert.deepEqual(statusOf(list.text, 'edit@example.test'), ['connected', 'Connected'])
      world.oauth.registerClient({ client_id: 'deskmail-web-2', client_secret: CLIENT.secret, redirect_uris: [`${app.url}/oauth/callback`] })
      await admin.get(`/admin/support-channel/emails/servers/${server.id}/edit`)
      const changed = await admin.postForm(`/admin/support-channel/emails/servers/${server.id}/edit`, {
        ...incomingForm(world, 'edit@example.test', { name: 'Renamed desk', client_id: 'deskmail-web-2', client_secret: '' }),
      })
      assert.equal(changed.status, 200)
      const url = new URL(providerUrlFrom(changed.text))
      assert.equal(url.searchParams.get('client_id'), 'deskmail-web-2')
      const cb = await world.oauth.authorizeHeadless(url.toString(), { login: 'edit@example.test' })
      const after = await admin.follow(admin.get(new URL(cb).pathname + new URL(cb).search))
      assert.deepEqual(statusOf(after.text, 'edit@example.test'), ['connected', 'Connected'])
    })

    if (dialect === 'sqlite') {
      it('when tokens and the client secret are stored, then none of them is in the database file or the logs in clear', async () => {
        const server = (await app.services.emailServers.list()).find((s) => s.emailAddress === 'help@example.test')!
        const access = await app.services.credentials.accessToken(server.credentialId!)
        const c = (await app.services.credentials.get(server.credentialId!))!
        const refresh = app.services.secrets.open(c.refresh_token_enc!, `credentials:${c.id}:refresh_token`)
        const file = app.services.storage.describe.replace(/^SQLite /, '')
        const fs = await import('node:fs')
        const bytes = Buffer.concat([file, `${file}-wal`].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f)))
        for (const secret of [access, refresh, CLIENT.secret]) {
          assert.ok(secret.length > 8)
          assert.ok(!bytes.includes(Buffer.from(secret)), 'not in the database file')
          assert.ok(!app.logs.join('').includes(secret), 'not in the logs')
        }
      })
    }

    it('when the API lists servers, then statuses come without secrets', async () => {
      const { token } = await app.services.apiTokens.create('test', null)
      const res = await fetch(`${app.url}/api/v1/email-servers?direction=incoming`, { headers: { authorization: `Bearer ${token}` } })
      assert.equal(res.status, 200)
      const text = await res.text()
      const body = JSON.parse(text)
      assert.ok(body.data.some((s: any) => s.emailAddress === 'help@example.test' && s.status === 'connected'))
      assert.ok(!text.includes(CLIENT.secret))
      assert.ok(!/dm1\./.test(text))
      assert.ok(!text.includes('refresh'))
    })

    it('when a server is disabled and deleted, then its status says so and its tokens are gone', async () => {
      const admin = await app.admin()
      const { page } = await connectIncoming(world, admin, incomingForm(world, 'gone@example.test', { revocation_url: world.oauth.revocationUrl }))
      assert.ok(page)
      const server = (await app.services.emailServers.list()).find((s) => s.emailAddress === 'gone@example.test')!
      const token = await app.services.credentials.accessToken(server.credentialId!)
      await admin.get('/admin/support-channel/emails')
      await admin.postForm(`/admin/support-channel/emails/servers/${server.id}/disable`, {})
      assert.deepEqual(statusOf((await admin.get('/admin/support-channel/emails')).text, 'gone@example.test'), ['disabled', 'Disabled'])
      const confirm = await admin.postForm(`/admin/support-channel/emails/servers/${server.id}/delete`, {})
      assert.match(confirm.text, /Delete Support gone@example\.test\?/)
      const done = await admin.follow(admin.postForm(`/admin/support-channel/emails/servers/${server.id}/delete`, { confirm: 'yes' }))
      assert.match(done.text, /was deleted and its authorization revoked at the provider/)
      // Revoked at the provider: the access token no longer opens the mailbox.
      await assert.rejects(
        connectImap({ host: '127.0.0.1', port: world.dovecot.imapsPort, security: 'tls' }, { user: 'gone@example.test', accessToken: token }),
        { code: 'mail_auth_rejected' },
      )
      assert.equal(statusOf(done.text, 'gone@example.test'), undefined)
      const cred = await app.services.storage.db.selectFrom('credentials').selectAll().where('id', '=', server.credentialId!).executeTakeFirst()
      assert.equal(cred, undefined)
    })
  })
}
