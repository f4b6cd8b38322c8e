import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import type { IngestOutcomeRow } from '../../src/ingest/pipeline.ts'
import type { EmailServer } from '../../src/storage/schema.ts'
import { dialects } from '../support/dialects.ts'
import { startTestApp } from '../support/app.ts'
import type { TestApp } from '../support/app.ts'
import { HttpClient } from '../support/http-client.ts'
import { insertServer, mail, raw } from '../pipeline/support.ts'

const png = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
)
const pdf = Buffer.from('%PDF-1.4\n% a tiny test pdf\n')

/** A customer mail with HTML (an inline image, a remote image, a script) and a PDF attachment. */
function richMail(): Buffer {
  return mail({
    from: 'Carla Costa <carla@customer.example>',
    subject: 'Invoice question',
    messageId: 'invoice-1@customer.example',
    contentType: 'multipart/mixed; boundary="mix"',
    body: [
      '--mix',
      'Content-Type: multipart/related; boundary="rel"',
      '',
      '--rel',
      'Content-Type: multipart/alternative; boundary="alt"',
      '',
      '--alt',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Please check the invoice attached.',
      '--alt',
      'Content-Type: text/html; charset=utf-8',
      '',
      '<p>Please check the <b>invoice</b> attached.</p><img src="cid:logo@customer.example" alt="logo"><img src="https://tracker.example/p.gif"><script>alert(1)</script>',
      '--alt--',
      '--rel',
      'Content-Type: image/png; name="logo.png"',
      'Content-ID: <logo@customer.example>',
      'Content-Transfer-Encoding: base64',
      '',
      png.toString('base64'),
      '--rel--',
      '--mix',
      'Content-Type: application/pdf; name="Quote 2024.pdf"',
      'Content-Disposition: attachment; filename="Quote 2024.pdf"',
      'Content-Transfer-Encoding: base64',
      '',
      pdf.toString('base64'),
      '--mix--',
    ].join('\r\n'),
  })
}

for (const dialect of dialects) {
  describe(`requests portal and API on ${dialect}`, () => {
    let app: TestApp
    let admin: HttpClient
    let server: EmailServer
    let other: EmailServer
    let first: IngestOutcomeRow
    let ignored: IngestOutcomeRow
    let quarantinedId: number
    let token: string

    before(async () => {
      app = await startTestApp({ dialect })
      server = await insertServer(app.services.storage, { email: 'support@example.test', name: 'Support Mailbox' })
      other = await insertServer(app.services.storage, { email: 'sales@example.test', name: 'Sales Mailbox' })
      ;[first] = await app.services.ingest.ingestBatch(server, [raw(richMail())])
      const rest = await app.services.ingest.ingestBatch(server, [
        raw(mail({ subject: 'Automatic reply: Invoice question', headers: { 'Auto-Submitted': 'auto-replied', 'In-Reply-To': '<invoice-1@customer.example>' } })),
        raw(mail({ from: 'vacation@customer.example', subject: 'Away', headers: { 'X-Autoreply': 'yes' } })),
        raw(Buffer.from('   \r\n')),
      ])
      ignored = rest[1]!
      await app.services.ingest.ingestBatch(other, [raw(mail({ from: 'dan@client.example', subject: 'Price list please', messageId: 'prices@client.example' }))])
      // A message quarantined earlier (e.g. by a parser limit since raised): valid mail, re-processable.
      const stuck = mail({ from: 'erin@client.example', subject: 'Stuck in quarantine' })
      const hash = createHash('sha256').update(stuck).digest('hex')
      await app.services.storage.db.insertInto('raw_mail').values({ hash, size: stuck.length, content: stuck, created_at: Date.now() }).execute()
      const row = await app.services.storage.db
        .insertInto('inbound_mail')
        .values({ server_id: server.id, source_key: 'imap:1:999', raw_hash: hash, size: stuck.length, sender: 'erin@client.example', subject: 'Stuck in quarantine', received_at: Date.now(), outcome: 'quarantined', outcome_reason: 'parsing took longer than 30000 ms' })
        .returning('id')
        .executeTakeFirstOrThrow()
      quarantinedId = row.id
      admin = await app.admin()
      token = (await app.services.apiTokens.create('test', null)).token
    })
    after(async () => {
      await app?.stop()
    })

    it('when the agent opens Requests, then the request is listed with its number, subject, requester and status', async () => {
      const res = await admin.get('/requests')
      assert.equal(res.status, 200)
      assert.match(res.text, new RegExp(`<a href="/requests/${first.requestId}">#${first.requestNumber}</a>`))
      assert.match(res.text, /Invoice question/)
      assert.match(res.text, /Carla Costa/)
      assert.match(res.text, /Open/)
      assert.match(res.text, /Price list please/)
      const bySales = await admin.get(`/requests?server=${other.id}`)
      assert.match(bySales.text, /Price list please/)
      assert.doesNotMatch(bySales.text, /Invoice question/)
      const closed = await admin.get('/requests?status=closed')
      assert.doesNotMatch(closed.text, /Invoice question/)
      assert.match(closed.text, /No requests match these filters/)
    })

    it('when the agent opens a request, then the whole conversation shows with flags, attachments, a sandboxed body and the reply form', async () => {
      const res = await admin.get(`/requests/${first.requestId}`)
      assert.equal(res.status, 200)
      assert.match(res.text, /Carla Costa/)
      assert.match(res.text, /Please check the invoice attached\./)
      assert.match(res.text, /Automatic reply<\/span>/)
      assert.match(res.text, new RegExp(`<iframe sandbox class="mail-body" src="/requests/${first.requestId}/messages/\\d+/body"`))
      assert.match(res.text, /Show remote images/)
      assert.match(res.text, /Quote 2024\.pdf/)
      assert.doesNotMatch(res.text, /logo\.png<\/a>/, 'inline images are not listed as attachments')
      assert.doesNotMatch(res.text, /<script>alert/)
      const form = /<form method="post" action="\/requests\/(\d+)\/replies\?_csrf=([^"]+)" enctype="multipart\/form-data">([\s\S]*?)<\/form>/.exec(res.text)
      assert.ok(form, 'the reply form')
      assert.equal(Number(form[1]), first.requestId)
      assert.match(form[3]!, /<label for="reply-body">Reply<\/label>/)
      assert.match(form[3]!, /<textarea id="reply-body" name="body"/)
      assert.match(form[3]!, /<input id="reply-attachments" type="file" name="attachments" multiple>/)
      assert.match(form[3]!, /<button type="submit" class="primary">Send Reply<\/button>/)
      assert.match(form[3]!, /name="_csrf"/)
    })

    it('when an attachment is downloaded, then it comes with an RFC 6266 Content-Disposition and a safe type', async () => {
      const detail = await app.services.requests.get(first.requestId!)
      const attachments = detail.messages[0]!.attachments
      const quote = attachments.find((a) => a.filename === 'Quote 2024.pdf')!
      const res = await fetch(`${app.url}/requests/${first.requestId}/attachments/${quote.id}`, { headers: { cookie: cookieOf(admin) } })
      assert.equal(res.status, 200)
      assert.equal(res.headers.get('content-disposition'), `attachment; filename="Quote 2024.pdf"; filename*=UTF-8''Quote%202024.pdf`)
      assert.equal(res.headers.get('content-type'), 'application/octet-stream')
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff')
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), pdf)
      const logo = attachments.find((a) => a.contentType === 'image/png')!
      const image = await fetch(`${app.url}/requests/${first.requestId}/attachments/${logo.id}`, { headers: { cookie: cookieOf(admin) } })
      assert.equal(image.headers.get('content-type'), 'image/png')
      assert.match(image.headers.get('content-disposition')!, /^inline; filename="logo\.png"/)
      // Another request's attachment is not reachable through this request.
      const wrong = await admin.get(`/requests/${first.requestId! + 1000}/attachments/${quote.id}`)
      assert.equal(wrong.status, 404)
      const anonymous = await new HttpClient(app.url).get(`/requests/${first.requestId}/attachments/${quote.id}`)
      assert.equal(anonymous.status, 303, 'sign-in required')
    })

    it('when the body of a message is loaded, then it has its own strict CSP and only sanitized HTML', async () => {
      const detail = await app.services.requests.get(first.requestId!)
      const message = detail.messages[0]!
      const res = await admin.get(`/requests/${first.requestId}/messages/${message.id}/body`)
      assert.equal(res.status, 200)
      assert.equal(res.headers.get('content-security-policy'), "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox")
      assert.match(res.text, /<b>invoice<\/b>/)
      // The inline image is embedded: the sandboxed frame's own requests carry no session cookie.
      assert.ok(res.text.includes(`src="data:image/png;base64,${png.toString('base64')}"`), 'the cid: image as a data: URL')
      const stored = await app.services.requests.messageBody(first.requestId!, message.id, { embedImages: false })
      const logo = message.attachments.find((a) => a.contentType === 'image/png')!
      assert.ok(stored.html.includes(`src="/requests/${first.requestId}/attachments/${logo.id}"`), 'stored with the attachment URL')
      assert.doesNotMatch(res.text, /<script|tracker\.example/)
      const remote = await admin.get(`/requests/${first.requestId}/messages/${message.id}/body?images=remote`)
      assert.match(remote.text, /src="https:\/\/tracker\.example\/p\.gif"/)
      assert.match(remote.headers.get('content-security-policy')!, /img-src 'self' data: https: http:; .*sandbox/)
      assert.doesNotMatch(remote.text, /<script/)
    })

    it('when the agent sets a status, then the request shows it', async () => {
      await admin.get(`/requests/${first.requestId}`)
      const res = await admin.postForm(`/requests/${first.requestId}/status`, { status: 'resolved' })
      assert.equal(res.status, 303)
      const page = await admin.follow(Promise.resolve(res))
      assert.match(page.text, /Status set to resolved/)
      assert.match(page.text, /<option value="resolved" selected>/)
      assert.equal((await app.services.requests.get(first.requestId!)).status, 'resolved')
    })

    it('when the admin opens the Email Audit, then each message shows with its outcome in words, and the filters narrow it', async () => {
      const res = await admin.get('/admin/support-channel/email-audit')
      assert.equal(res.status, 200)
      assert.match(res.text, new RegExp(`<a href="/requests/${first.requestId}#message-\\d+">New request #${first.requestNumber}</a>`))
      assert.match(res.text, new RegExp(`Reply added to #${first.requestNumber}`))
      assert.match(res.text, /Ignored: automatic reply that matches no request: X-Autoreply header/)
      assert.match(res.text, /Quarantined: the message is empty/)
      assert.match(res.text, /<td class="messages-today">5<\/td>/, 'Support got 5 messages today')
      const ignoredOnly = await admin.get('/admin/support-channel/email-audit?outcome=ignored')
      assert.match(ignoredOnly.text, /X-Autoreply header/)
      assert.doesNotMatch(ignoredOnly.text, /New request #/)
      const byServer = await admin.get(`/admin/support-channel/email-audit?server=${other.id}`)
      assert.match(byServer.text, /Price list please/)
      assert.doesNotMatch(byServer.text, /Invoice question/)
      const byId = await admin.get(`/admin/support-channel/email-audit?messageId=${encodeURIComponent('<prices@client.example>')}`)
      assert.match(byId.text, /Price list please/)
      assert.doesNotMatch(byId.text, /Invoice question/)
      const search = await admin.get('/admin/support-channel/email-audit?q=VACATION%40')
      assert.match(search.text, /vacation@customer\.example/)
      assert.doesNotMatch(search.text, /Price list please/)
      const nothing = await admin.get('/admin/support-channel/email-audit?q=%25')
      assert.match(nothing.text, /No message received matches these filters/, '% is matched literally')
    })

    it('when the admin re-processes a quarantined message, then it becomes a request and leaves the quarantine', async () => {
      const list = await admin.get('/admin/support-channel/quarantine')
      assert.match(list.text, /Stuck in quarantine/)
      assert.match(list.text, /parsing took longer than 30000 ms/)
      assert.match(list.text, new RegExp(`action="/admin/support-channel/quarantine/${quarantinedId}/reprocess"`))
      const raw = await fetch(`${app.url}/admin/support-channel/quarantine/${quarantinedId}/raw`, { headers: { cookie: cookieOf(admin) } })
      assert.equal(raw.status, 200)
      assert.match(raw.headers.get('content-disposition')!, new RegExp(`^attachment; filename="message-${quarantinedId}\\.eml"`))
      assert.match(await raw.text(), /Subject: Stuck in quarantine/)
      const res = await admin.follow(admin.postForm(`/admin/support-channel/quarantine/${quarantinedId}/reprocess`, {}))
      assert.match(res.text, /Re-processed: New request #\d+/)
      assert.doesNotMatch(res.text, /Stuck in quarantine/)
      const audit = await app.services.requests.auditEntry(quarantinedId)
      assert.equal(audit.outcome, 'new_request')
      // The empty message stays quarantined, with its reason.
      const empty = (await app.services.requests.quarantine()).items[0]!
      const again = await admin.follow(admin.postForm(`/admin/support-channel/quarantine/${empty.id}/reprocess`, {}))
      assert.match(again.text, /Still quarantined: the message is empty/)
    })

    it('when an agent who is not an admin opens the Email Audit, then it is refused', async () => {
      await app.services.users.create({ email: 'agent@example.test', password: 'agent password 123', role: 'agent' })
      const agent = new HttpClient(app.url)
      await agent.signIn('agent@example.test', 'agent password 123')
      assert.equal((await agent.get('/admin/support-channel/email-audit')).status, 403)
      assert.equal((await agent.get('/admin/support-channel/quarantine')).status, 403)
      assert.equal((await agent.get('/requests')).status, 200)
    })

    it('when the API is called without a token, then it answers 401; with one, requests, audit and quarantine come as JSON', async () => {
      for (const path of ['/api/v1/requests', `/api/v1/requests/${first.requestId}`, '/api/v1/quarantine', '/api/v1/email-audit']) {
        assert.equal((await fetch(`${app.url}${path}`)).status, 401, path)
      }
      const auth = { headers: { authorization: `Bearer ${token}` } }
      const list = (await (await fetch(`${app.url}/api/v1/requests?serverId=${server.id}`, auth)).json()) as any
      assert.ok(list.data.some((r: any) => r.number === first.requestNumber && r.subject === 'Invoice question' && r.requester.email === 'carla@customer.example'))
      assert.ok(list.data.every((r: any) => r.serverId === server.id))
      const detail = (await (await fetch(`${app.url}/api/v1/requests/${first.requestId}`, auth)).json()) as any
      assert.equal(detail.messages.length, 2)
      assert.equal(detail.messages[0].messageId, 'invoice-1@customer.example')
      assert.deepEqual(detail.messages[1].flags, ['auto-reply'])
      const quote = detail.messages[0].attachments.find((a: any) => a.filename === 'Quote 2024.pdf')
      assert.equal(quote.size, pdf.length)
      assert.equal(quote.content, undefined, 'metadata only')
      const missing = await fetch(`${app.url}/api/v1/requests/999999`, auth)
      assert.equal(missing.status, 404)
      const audit = (await (await fetch(`${app.url}/api/v1/email-audit?outcome=ignored`, auth)).json()) as any
      assert.ok(audit.data.some((e: any) => e.id === ignored.inboundMailId && /X-Autoreply/.test(e.reason)))
      assert.ok(audit.data.every((e: any) => e.outcome === 'ignored'))
      const byId = (await (await fetch(`${app.url}/api/v1/email-audit?messageId=prices@client.example`, auth)).json()) as any
      assert.equal(byId.total, 1)
      const quarantine = (await (await fetch(`${app.url}/api/v1/quarantine`, auth)).json()) as any
      assert.ok(quarantine.data.length >= 1)
      assert.ok(quarantine.data.every((e: any) => e.outcome === 'quarantined'))
      const bad = await fetch(`${app.url}/api/v1/email-audit?outcome=nonsense`, auth)
      assert.equal(bad.status, 400)
      const doc = (await (await fetch(`${app.url}/api/v1/openapi.json`)).json()) as any
      for (const path of ['/api/v1/requests', '/api/v1/requests/{id}', '/api/v1/quarantine', '/api/v1/email-audit']) assert.ok(doc.paths[path]?.get, path)
    })
  })
}

/** The signed-in client's cookies, for requests that need the raw response (binary bodies). */
function cookieOf(client: HttpClient): string {
  return [...(client as unknown as { cookies: Map<string, string> }).cookies].map(([k, v]) => `${k}=${v}`).join('; ')
}
