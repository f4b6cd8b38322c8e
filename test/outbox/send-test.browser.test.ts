import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { Page } from 'playwright-core'
import { launchBrowser } from '../harness/browser.ts'
import { consentAtProvider, signInInBrowser } from '../support/browser-flow.ts'
import type { TestBrowser } from '../harness/browser.ts'
import { startTestApp } from '../support/app.ts'
import type { TestApp } from '../support/app.ts'
import { CLIENT, registerDeskmail, startMailWorld } from '../support/mail-world.ts'
import type { MailWorld } from '../support/mail-world.ts'
import { header } from './support.ts'

/** The admin adds an outgoing server with OAuth in real Chromium and sends a test email through it. */
describe('Outgoing Email Servers in Chromium', () => {
  let world: MailWorld
  let app: TestApp
  let browser: TestBrowser
  let page: Page
  before(async () => {
    world = await startMailWorld({ smtp: true })
    app = await startTestApp()
    registerDeskmail(world, app.url)
    browser = await launchBrowser()
    page = browser.page
  })
  after(async () => {
    await browser?.close()
    app?.services.outbox.close()
    await app?.stop()
    await world?.stop()
  })

  const consent = (login: string) => consentAtProvider(page, world.oauth.issuer, app.url, login)


  it('when the admin adds an outgoing server with OAuth, consents, and sends a test email, then the SMTP server receives it authenticated with a valid token', async () => {
    const from = 'outgoing-desk@example.test'
    await signInInBrowser(page, app.url)

    await page.goto(`${app.url}/admin/support-channel/emails`)
    await page.getByRole('tab', { name: 'Outgoing Email Servers' }).click()
    await page.getByRole('link', { name: 'Add Outgoing Email Server' }).click()
    await page.getByLabel('Provider', { exact: true }).selectOption('custom')
    await page.getByLabel('Name', { exact: true }).fill('Desk SMTP')
    await page.getByLabel('From Address', { exact: true }).fill(from)
    await page.getByLabel('Display Name', { exact: true }).fill('Example Support')
    await page.getByLabel('Host', { exact: true }).fill('127.0.0.1')
    await page.getByLabel('Port', { exact: true }).fill(String(world.smtp!.port))
    await page.getByLabel('Security', { exact: true }).selectOption('starttls')
    await page.getByLabel('Client ID', { exact: true }).fill(CLIENT.id)
    await page.getByLabel('Client Secret', { exact: true }).fill(CLIENT.secret)
    await page.getByLabel('Authorization Url', { exact: true }).fill(world.oauth.authorizationUrl)
    await page.getByLabel('Token Url', { exact: true }).fill(world.oauth.tokenUrl)
    await page.getByLabel('Scope', { exact: true }).fill('https://mail.google.com/ openid email')
    await page.getByRole('button', { name: 'Save' }).click()
    await consent(from)
    await page.waitForURL(`${app.url}/admin/support-channel/emails/outgoing`)
    const row = page.locator('tr', { hasText: from })
    assert.equal((await row.locator('.status').textContent())?.trim(), 'Connected')

    await row.getByRole('link', { name: 'Send Test Email' }).click()
    await page.getByLabel('To', { exact: true }).fill('someone@customer.test')
    await page.getByRole('button', { name: 'Send Test Email' }).click()
    await page.locator('#send-test-result').waitFor()
    assert.equal(await page.locator('#send-test-result').getAttribute('data-status'), 'sent')
    assert.match((await page.locator('.flash').textContent()) ?? '', /Test email sent to someone@customer\.test\. The server answered: 250/)
    assert.match((await page.locator('#smtp-response').textContent()) ?? '', /^250/)

    const got = world.smtp!.messages.filter((m) => m.to.includes('someone@customer.test'))
    assert.equal(got.length, 1)
    assert.equal(got[0]!.authUser, from, 'the sink accepted the token after introspection at the provider')
    assert.equal(header(got[0]!.raw, 'from'), `Example Support <${from}>`)
    assert.match(header(got[0]!.raw, 'subject') ?? '', /deskmail test email from Desk SMTP/)
  })
})
