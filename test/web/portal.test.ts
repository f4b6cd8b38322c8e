import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { dialects } from '../support/dialects.ts'
import { ADMIN, startTestApp } from '../support/app.ts'
import type { TestApp } from '../support/app.ts'

for (const dialect of dialects) {
  describe(`portal shell on ${dialect}`, () => {
    let app: TestApp
    before(async () => {
      app = await startTestApp({ dialect })
    })
    after(async () => app?.stop())

    it('when the sign-in page is opened, then it has Email, Password, Sign in and strict security headers', async () => {
      const res = await app.client().get('/login')
      assert.equal(res.status, 200)
      assert.match(res.text, /<label for="f-email">Email<\/label>/)
      assert.match(res.text, /<label for="f-password">Password<\/label>/)
      assert.match(res.text, /<button type="submit" class="primary">Sign in<\/button>/)
      const csp = res.headers.get('content-security-policy') ?? ''
      assert.match(csp, /default-src 'self'/)
      assert.match(csp, /script-src 'self'(;|$)/)
      assert.match(csp, /frame-ancestors 'none'/)
      assert.match(csp, /object-src 'none'/)
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff')
      assert.doesNotMatch(res.text, /<script>|style="/)
    })

    it('when the password is wrong, then the page says so and no session is made', async () => {
      const c = app.client()
      await c.get('/login')
      const res = await c.postForm('/login', { email: ADMIN.email, password: 'wrong password!' })
      assert.equal(res.status, 401)
      assert.match(res.text, /The email address or password is not correct/)
      const after = await c.get('/requests')
      assert.equal(after.status, 303)
      assert.match(after.location!, /^\/login/)
    })

    it('when a form is posted without its CSRF token, then it is refused', async () => {
      const c = app.client()
      await c.get('/login')
      const res = await c.postForm('/login', { _csrf: 'forged', email: ADMIN.email, password: ADMIN.password })
      assert.equal(res.status, 403)
      assert.match(res.text, /form has expired/)
    })

    it('when the admin signs in, then Requests and Admin > Support Channel > Emails are reachable, and sign-out ends it', async () => {
      const c = await app.admin()
      const requests = await c.get('/requests')
      assert.equal(requests.status, 200)
      assert.match(requests.text, /href="\/admin\/support-channel\/emails">Emails</)
      assert.match(requests.text, /<summary>Admin<\/summary>/)
      assert.match(requests.text, /Support Channel/)
      const emails = await c.get('/admin/support-channel/emails')
      assert.equal(emails.status, 200)
      await c.postForm('/logout', {})
      assert.equal((await c.get('/requests')).status, 303)
    })

    it('when sign-ins keep failing, then the sixth attempt is paused with a message', async () => {
      const c = app.client()
      await c.get('/login')
      for (let i = 0; i < 5; i++) {
        const r = await c.postForm('/login', { email: 'victim@example.test', password: `guess-${i}-guess` })
        assert.equal(r.status, 401)
      }
      const r = await c.postForm('/login', { email: 'victim@example.test', password: 'guess-5-guess' })
      assert.equal(r.status, 429)
      assert.match(r.text, /Too many failed sign-ins/)
    })

    it('when an API token is created in the portal, then it authorizes /api/v1 and is shown once', async () => {
      const c = await app.admin()
      await c.get('/admin/api-tokens')
      const res = await c.postForm('/admin/api-tokens', { name: 'helpdesk sync' })
      const token = /<code id="new-token">([^<]+)<\/code>/.exec(res.text)?.[1]
      assert.ok(token, 'token shown')
      const me = await fetch(`${app.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } })
      assert.equal(me.status, 200)
      assert.equal(((await me.json()) as any).name, 'helpdesk sync')
      const list = await c.get('/admin/api-tokens')
      assert.ok(!list.text.includes(token!))
      const bad = await fetch(`${app.url}/api/v1/me`, { headers: { authorization: 'Bearer dmk_nope' } })
      assert.equal(bad.status, 401)
      assert.match(((await bad.json()) as any).message, /Admin > API Tokens/)
    })

    it('when the OpenAPI document, health and metrics are asked for, then they answer', async () => {
      const doc = (await (await fetch(`${app.url}/api/v1/openapi.json`)).json()) as any
      assert.equal(doc.openapi, '3.1.0')
      assert.ok(doc.paths['/api/v1/me'].get)
      const health = await fetch(`${app.url}/healthz`)
      assert.equal(health.status, 200)
      assert.deepEqual(await health.json(), { status: 'ok', database: 'ok' })
      const metrics = await (await fetch(`${app.url}/metrics`)).text()
      assert.match(metrics, /deskmail_http_requests_total/)
      assert.match(metrics, /deskmail_process_resident_memory_bytes/)
    })

    it('when secrets pass through the service, then they are in neither the logs nor the database file in clear', async () => {
      const secret = 'GOCSPX-very-secret-client-secret'
      const { secrets, storage } = app.services
      const sealed = secrets.seal(secret, 'settings:probe:value')
      await storage.db.insertInto('settings').values({ key: 'probe', value: sealed }).execute()
      app.services.logger.info({ clientSecret: secret, nested: { refresh_token: secret } }, 'probe')
      assert.ok(!app.logs.join('').includes(secret))
      assert.ok(app.logs.join('').includes('[redacted]'))
      assert.ok(!app.logs.join('').includes(ADMIN.password))
      if (dialect === 'sqlite') {
        const file = path.join(app.dataDir, '..', path.basename(app.dataDir))
        const dbFile = storage.describe.replace(/^SQLite /, '')
        const bytes = Buffer.concat([fs.readFileSync(dbFile), fs.existsSync(`${dbFile}-wal`) ? fs.readFileSync(`${dbFile}-wal`) : Buffer.alloc(0)])
        assert.ok(file)
        assert.ok(!bytes.includes(Buffer.from(secret)))
        assert.ok(!bytes.includes(Buffer.from(ADMIN.password)))
      } else {
        const rows = await storage.db.selectFrom('settings').selectAll().execute()
        assert.ok(!JSON.stringify(rows).includes(secret))
      }
    })
  })
}

describe('first start without an administrator', () => {
  it('when no admin is configured, then /setup asks for the code from the log and creates the admin', async () => {
    const app = await startTestApp({ env: { DESKMAIL_ADMIN_EMAIL: '', DESKMAIL_ADMIN_PASSWORD: '' } as any })
    try {
      const line = app.logs.find((l) => l.includes('setup code'))
      const code = /setup code: (\S+?)"/.exec(line ?? '')?.[1]
      assert.ok(code, 'the log shows a setup code')
      const c = app.client()
      const login = await c.get('/login')
      assert.equal(login.location, '/setup')
      await c.get('/setup')
      const wrong = await c.postForm('/setup', { code: 'wrong', email: 'boss@example.test', password: 'long enough password' })
      assert.equal(wrong.status, 400)
      assert.match(wrong.text, /class="field-error" id="f-code-error">The setup code is not valid/)
      assert.match(wrong.text, /value="boss@example.test"/)
      const ok = await c.postForm('/setup', { code, email: 'boss@example.test', password: 'long enough password' })
      assert.equal(ok.status, 303)
      assert.equal((await c.get('/admin/support-channel/emails')).status, 200)
      assert.equal((await app.client().get('/setup')).location, '/login')
    } finally {
      await app.stop()
    }
  })
})
