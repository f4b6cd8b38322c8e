import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Page } from 'playwright-core'
import { launchBrowser } from '../harness/browser.ts'
import { consentAtProvider, signInInBrowser } from '../support/browser-flow.ts'
import type { TestBrowser } from '../harness/browser.ts'
import { startTestApp } from '../support/app.ts'
import type { TestApp } from '../support/app.ts'
import { CLIENT, registerDeskmail, startMailWorld } from '../support/mail-world.ts'
import type { MailWorld } from '../support/mail-world.ts'

/** The admin's whole flow in real headless Chromium, as an admin would click it. */
describe('admin flow in Chromium', () => {
  let world: MailWorld
  let app: TestApp
  let browser: TestBrowser
  let page: Page
  before(async () => {
    world = await startMailWorld()
    app = await startTestApp()
    registerDeskmail(world, app.url)
    browser = await launchBrowser()
    page = browser.page
  })
  after(async () => {
    await browser?.close()
    await app?.stop()
    await world?.stop()
  })

  const consent = (login: string) => consentAtProvider(page, world.oauth.issuer, app.url, login)


  /** A fresh sign-in at the provider (its cookies are `_session`, `_interaction`...), as when the admin picks the mailbox's account. */
  const forgetProviderSession = () => browser.context.clearCookies({ name: /^_/ })

  const row = (mailbox: string) => page.locator('tr', { hasText: mailbox })

  it('when the admin signs in, then the portal opens on Requests', async () => {
    await signInInBrowser(page, app.url)
    assert.equal(await page.getByRole('link', { name: 'Requests' }).count() > 0, true)
  })

  for (const protocol of ['IMAP', 'POP3'] as const) {
    it(`when the admin adds an ${protocol} server with the Custom provider and consents, then it is Connected`, async () => {
      const mailbox = `${protocol.toLowerCase()}-desk@example.test`
      await page.locator('summary', { hasText: 'Admin' }).click()
      await page.getByRole('link', { name: 'Emails', exact: true }).click()
      await page.getByRole('tab', { name: 'Incoming Email Servers' }).waitFor()
      await page.getByRole('link', { name: 'Add Incoming Email Server' }).click()
      // The redirect URI is shown exactly, with a copy button.
      assert.equal(await page.locator('#redirect-uri').textContent(), `${app.url}/oauth/callback`)
      await page.getByLabel('Provider', { exact: true }).selectOption('custom')
      await page.getByLabel('Name', { exact: true }).fill(`${protocol} desk`)
      await page.getByLabel('Email Address', { exact: true }).fill(mailbox)
      await page.getByLabel('Protocol', { exact: true }).selectOption(protocol.toLowerCase())
      await page.getByLabel('Host', { exact: true }).fill('127.0.0.1')
      await page.getByLabel('Port', { exact: true }).fill(String(protocol === 'IMAP' ? world.dovecot.imapsPort : world.dovecot.pop3sPort))
      await page.getByLabel('Security', { exact: true }).selectOption('tls')
      await page.getByLabel('Client ID', { exact: true }).fill(CLIENT.id)
      await page.getByLabel('Client Secret', { exact: true }).fill(CLIENT.secret)
      await page.getByLabel('Authorization Url', { exact: true }).fill(world.oauth.authorizationUrl)
      await page.getByLabel('Token Url', { exact: true }).fill(world.oauth.tokenUrl)
      await page.getByLabel('Scope', { exact: true }).fill('https://mail.google.com/ openid email')
      await forgetProviderSession()
      await page.getByRole('button', { name: 'Save' }).click()
      await consent(mailbox)
      await page.waitForURL(`${app.url}/admin/support-channel/emails`)
      await row(mailbox).locator('.status').waitFor()
      assert.equal((await row(mailbox).locator('.status').textContent())?.trim(), 'Connected')
      assert.match((await page.locator('.flash').textContent()) ?? '', /is connected/)
    })
  }

  it('when the tokens are revoked, then Reconnect in the browser brings the server back to Connected', async () => {
    const mailbox = 'imap-desk@example.test'
    world.oauth.revokeAll(mailbox)
    const server = (await app.services.emailServers.list()).find((s) => s.emailAddress === mailbox)!
    await app.services.storage.db.updateTable('credentials').set({ access_token_expires_at: Date.now() - 1 }).where('id', '=', server.credentialId!).execute()
    await page.goto(`${app.url}/admin/support-channel/emails`)
    await row(mailbox).getByRole('button', { name: 'Test Connection' }).click()
    await page.waitForURL(`${app.url}/admin/support-channel/emails`)
    assert.equal((await row(mailbox).locator('.status').textContent())?.trim(), 'Needs re-authorization')
    await forgetProviderSession()
    await row(mailbox).getByRole('button', { name: 'Reconnect' }).click()
    await consent(mailbox)
    await page.waitForURL(`${app.url}/admin/support-channel/emails`)
    assert.equal((await row(mailbox).locator('.status').textContent())?.trim(), 'Connected')
  })

  it('when the Google client JSON is uploaded, then the client fields are filled, and a desktop client is refused', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deskmail-json-'))
    const web = path.join(dir, 'client_secret_web.json')
    fs.writeFileSync(web, JSON.stringify({ web: { client_id: '42-web.apps.googleusercontent.com', project_id: 'desk', auth_uri: 'https://accounts.google.com/o/oauth2/auth', token_uri: 'https://oauth2.googleapis.com/token', client_secret: 'GOCSPX-upload', redirect_uris: [`${app.url}/oauth/callback`] } }))
    const installed = path.join(dir, 'client_secret_installed.json')
    fs.writeFileSync(installed, JSON.stringify({ installed: { client_id: '42-desktop.apps.googleusercontent.com', client_secret: 'x', auth_uri: 'https://accounts.google.com/o/oauth2/auth', token_uri: 'https://oauth2.googleapis.com/token' } }))

    await page.goto(`${app.url}/admin/support-channel/emails/incoming/new`)
    await page.getByLabel('Google client JSON', { exact: true }).setInputFiles(web)
    await page.waitForSelector('.flash-info')
    assert.equal(await page.getByLabel('Client ID', { exact: true }).inputValue(), '42-web.apps.googleusercontent.com')
    assert.equal(await page.getByLabel('Token Url', { exact: true }).inputValue(), 'https://oauth2.googleapis.com/token')
    assert.equal(await page.getByLabel('Client Secret', { exact: true }).inputValue(), '', 'the secret is kept server-side, not echoed into the page')

    await page.getByLabel('Google client JSON', { exact: true }).setInputFiles(installed)
    await page.waitForSelector('#f-client_json-error')
    assert.match((await page.locator('#f-client_json-error').textContent()) ?? '', /Desktop|installed/i)
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('when the Gmail preset is chosen, then its URLs, scope and hosts are filled in', async () => {
    await page.goto(`${app.url}/admin/support-channel/emails/incoming/new`)
    await page.getByLabel('Provider', { exact: true }).selectOption('microsoft365')
    await page.getByLabel('Provider', { exact: true }).selectOption('gmail')
    assert.equal(await page.getByLabel('Authorization Url', { exact: true }).inputValue(), 'https://accounts.google.com/o/oauth2/v2/auth')
    assert.equal(await page.getByLabel('Token Url', { exact: true }).inputValue(), 'https://oauth2.googleapis.com/token')
    assert.equal(await page.getByLabel('Scope', { exact: true }).inputValue(), 'https://mail.google.com/')
    assert.equal(await page.getByLabel('Host', { exact: true }).inputValue(), 'imap.gmail.com')
    await page.getByLabel('Provider', { exact: true }).selectOption('microsoft365')
    assert.match(await page.getByLabel('Scope', { exact: true }).inputValue(), /IMAP\.AccessAsUser\.All offline_access/)
    assert.equal(await page.getByLabel('Host', { exact: true }).inputValue(), 'outlook.office365.com')
    await page.getByLabel('Tenant', { exact: true }).fill('contoso.onmicrosoft.com')
    await page.getByLabel('Tenant', { exact: true }).dispatchEvent('change')
    assert.equal(await page.getByLabel('Authorization Url', { exact: true }).inputValue(), 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize')
    assert.equal(await page.getByLabel('Token Url', { exact: true }).inputValue(), 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token')
    await page.getByLabel('Provider', { exact: true }).selectOption('gmail')
    assert.equal(await page.getByLabel('Tenant', { exact: true }).isVisible(), false, 'the tenant is a Microsoft-only field')
  })
})
