import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startTestApp } from '../support/app.ts'
import type { TestApp } from '../support/app.ts'
import { registerDeskmail, startMailWorld } from '../support/mail-world.ts'
import type { MailWorld } from '../support/mail-world.ts'
import { dialects } from '../support/dialects.ts'
import type { HttpClient } from '../support/http-client.ts'
import type { EmailServer } from '../../src/storage/schema.ts'
import { connectedOutgoingServer, header, receivedWithId, seedRequest } from './support.ts'

const BASE = '/admin/support-channel/emails'

for (const dialect of dialects) {
  describe(`replies and Send Test Email through the portal and the API on ${dialect}`, () => {
    let world: MailWorld
    let app: TestApp
    let outgoing: EmailServer
    let admin: HttpClient
    before(async () => {
      world = await startMailWorld({ smtp: true })
      app = await startTestApp({ dialect })
      registerDeskmail(world, app.url)
      outgoing = await connectedOutgoingServer(app, world, 'desk@example.test', { isDefault: true, displayName: 'Example Support' })
      admin = await app.admin()
    })
    after(async () => {
      app?.services.outbox.close()
      await app?.stop()
      await world?.stop()
    })

    const db = () => app.services.storage.db
    const outboxFor = (requestId: number) => db().selectFrom('outbox').selectAll().where('request_id', '=', requestId).execute()
    const csrf = async () => {
      await admin.get(`${BASE}/servers/${outgoing.id}/send-test`)
      return admin.csrf()
    }
    const postReply = (requestId: number, form: FormData, token?: string) =>
      admin.request('POST', `/requests/${requestId}/replies${token === undefined ? '' : `?_csrf=${encodeURIComponent(token)}`}`, { body: form as any })

    it('when the agent posts the reply form with a file, then the reply is queued with its attachment and the page is shown again', async () => {
      const r = await seedRequest(app, { customer: 'ann@customer.test' })
      const form = new FormData()
      form.append('body', 'Here is the manual.')
      form.append('attachments', new Blob([Buffer.from('%PDF-1.4 manual')], { type: 'application/pdf' }), '../Manual "v2".pdf')
      form.append('attachments', new Blob([]), '')
      const res = await postReply(r.requestId, form, await csrf())
      assert.equal(res.status, 303, res.text)
      assert.match(res.location ?? '', new RegExp(`^/requests/${r.requestId}#message-\\d+$`))
      const [item] = await outboxFor(r.requestId)
      assert.ok(item)
      assert.equal(item.status, 'queued')
      const files = await db().selectFrom('attachments').select(['filename', 'content_type', 'content']).where('message_id', '=', item.message_id!).execute()
      assert.deepEqual(files.map((f) => [f.filename, f.content_type, f.content.toString()]), [['Manual _v2_.pdf', 'application/pdf', '%PDF-1.4 manual']])
      const message = await db().selectFrom('messages').select(['text_body', 'author_user_id']).where('id', '=', item.message_id!).executeTakeFirstOrThrow()
      assert.equal(message.text_body, 'Here is the manual.')
      assert.ok(message.author_user_id)
      await app.services.outbox.processDue()
      const mail = receivedWithId(world, item.message_id_header)
      assert.equal(mail.length, 1)
      assert.match(mail[0]!.raw.toString(), /filename="Manual _v2_\.pdf"|filename=Manual/)
    })

    it('when the reply form comes without a valid CSRF token, then it is refused and nothing is queued', async () => {
      const r = await seedRequest(app, { customer: 'bob@customer.test' })
      const form = new FormData()
      form.append('body', 'forged')
      assert.equal((await postReply(r.requestId, form)).status, 403)
      assert.equal((await postReply(r.requestId, form, 'forged-token')).status, 403)
      assert.equal((await outboxFor(r.requestId)).length, 0)
    })

    it('when the reply is empty or the request does not exist, then the agent is told and nothing is queued', async () => {
      const r = await seedRequest(app, { customer: 'cy@customer.test' })
      const empty = new FormData()
      empty.append('body', '   ')
      const res = await postReply(r.requestId, empty, await csrf())
      assert.equal(res.status, 303)
      assert.equal(res.location, `/requests/${r.requestId}`)
      assert.equal((await outboxFor(r.requestId)).length, 0)
      // The flash travels with the session to the next page.
      const next = await admin.get(`${BASE}/servers/${outgoing.id}/send-test`)
      assert.match(next.text, /The reply was not sent: Write a reply/)
      const missing = new FormData()
      missing.append('body', 'Hello')
      assert.equal((await postReply(987654, missing, await csrf())).status, 404)
    })

    it('when a client posts a reply to the API, then it is queued and its delivery state can be read back', async () => {
      const r = await seedRequest(app, { customer: 'dee@customer.test' })
      const { token } = await app.services.apiTokens.create('integration', 1)
      const api = (method: string, path: string, body?: unknown, auth = token) =>
        fetch(`${app.url}/api/v1${path}`, {
          method,
          headers: { authorization: `Bearer ${auth}`, ...(body ? { 'content-type': 'application/json' } : {}) },
          body: body ? JSON.stringify(body) : undefined,
        })
      const res = await api('POST', `/requests/${r.requestId}/replies`, {
        body: 'Answer from the API',
        attachments: [{ filename: 'log.txt', contentType: 'text/plain', contentBase64: Buffer.from('line 1').toString('base64') }],
      })
      assert.equal(res.status, 202)
      const { data } = (await res.json()) as { data: { id: number; status: string; messageIdHeader: string; requestId: number; kind: string } }
      assert.equal(data.status, 'queued')
      assert.equal(data.kind, 'reply')
      assert.equal(data.requestId, r.requestId)
      await app.services.outbox.processDue()
      const list = (await (await api('GET', `/requests/${r.requestId}/outbox`)).json()) as { data: Array<{ id: number; status: string; smtpResponse: string }> }
      assert.equal(list.data[0]!.id, data.id)
      assert.equal(list.data[0]!.status, 'sent')
      assert.match(list.data[0]!.smtpResponse, /^250/)
      const mail = receivedWithId(world, data.messageIdHeader)
      assert.equal(mail.length, 1)
      assert.match(mail[0]!.raw.toString(), /filename=log\.txt/)

      assert.equal((await api('POST', `/requests/${r.requestId}/replies`, { body: 'x', attachments: [{ filename: 'a', contentBase64: '***' }] })).status, 400)
      assert.equal((await api('POST', `/requests/${r.requestId}/replies`, { body: '' })).status, 400)
      assert.equal((await api('POST', '/requests/987654/replies', { body: 'x' })).status, 404)
      assert.equal((await api('POST', `/requests/${r.requestId}/replies`, { body: 'x' }, 'dmk_wrong')).status, 401)
      const doc = (await (await fetch(`${app.url}/api/v1/openapi.json`)).json()) as { paths: Record<string, unknown> }
      assert.ok(doc.paths['/api/v1/requests/{id}/replies'])
    })

    it('when the admin sends a test email, then the page shows the server\'s answer and the SMTP server received it authenticated', async () => {
      const page = await admin.get(`${BASE}/servers/${outgoing.id}/send-test`)
      assert.equal(page.status, 200)
      assert.match(page.text, /Send Test Email/)
      const res = await admin.postForm(`${BASE}/servers/${outgoing.id}/send-test`, { to: 'check@customer.test' })
      assert.equal(res.status, 200)
      assert.match(res.text, /Test email sent to check@customer\.test\. The server answered: 250/)
      assert.match(res.text, /data-status="sent"/)
      const mail = world.smtp!.messages.filter((m) => m.to.includes('check@customer.test'))
      assert.equal(mail.length, 1)
      assert.equal(mail[0]!.authUser, 'desk@example.test')
      assert.equal(header(mail[0]!.raw, 'from'), 'Example Support <desk@example.test>')

      const bad = await admin.postForm(`${BASE}/servers/${outgoing.id}/send-test`, { to: 'not an address' })
      assert.equal(bad.status, 400)
      assert.match(bad.text, /not a valid email address/)
    })

    it('when a reply failed, then Send again from the portal queues it again and the outbox page lists it', async () => {
      const r = await seedRequest(app, { customer: 'eve@customer.test' })
      const q = await app.services.outbox.queueReply({ requestId: r.requestId, authorUserId: 1, body: 'Will fail' })
      await db().updateTable('outbox').set({ status: 'failed', last_error: '550 5.1.1 User unknown' }).where('id', '=', q.outboxId).execute()
      const list = await admin.get('/admin/support-channel/outbox?status=failed')
      assert.match(list.text, new RegExp(`data-outbox-id="${q.outboxId}"`))
      assert.match(list.text, /550 5\.1\.1 User unknown/)
      assert.match(list.text, new RegExp(`action="/outbox/${q.outboxId}/send-again"`))
      const res = await admin.postForm(`/outbox/${q.outboxId}/send-again`, {})
      assert.equal(res.status, 303)
      assert.equal(res.location, `/requests/${r.requestId}`)
      assert.equal((await app.services.outbox.get(q.outboxId)).status, 'queued')
    })
  })
}
