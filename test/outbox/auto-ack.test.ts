import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startTestApp } from '../support/app.ts'
import type { TestApp } from '../support/app.ts'
import { registerDeskmail, startMailWorld } from '../support/mail-world.ts'
import type { MailWorld } from '../support/mail-world.ts'
import { dialects } from '../support/dialects.ts'
import type { EmailServer } from '../../src/storage/schema.ts'
import type { NewRequestEventLike } from '../../src/outbox/outbox.ts'
import { connectedOutgoingServer, header, incomingServerRow, receivedWithId, seedRequest } from './support.ts'

for (const dialect of dialects) {
  describe(`automatic acknowledgement of new requests on ${dialect}`, () => {
    let world: MailWorld
    let app: TestApp
    let outgoing: EmailServer
    let inbox: EmailServer
    before(async () => {
      world = await startMailWorld({ smtp: true })
      app = await startTestApp({ dialect })
      registerDeskmail(world, app.url)
      outgoing = await connectedOutgoingServer(app, world, 'desk@example.test', { isDefault: true })
      inbox = await incomingServerRow(app, {
        email_address: 'support@example.test',
        auto_ack_enabled: 1,
        auto_ack_subject: 'Received: {{subject}}',
        auto_ack_body: 'Your request number is {{number}} ({{subject}}).',
      })
    })
    after(async () => {
      app?.services.outbox.close()
      await app?.stop()
      await world?.stop()
    })

    const db = () => app.services.storage.db

    /** What the ingest pipeline does for a new request: the request, then the listener, in one transaction. */
    async function newRequest(from: string, opts: { suppress?: boolean; server?: EmailServer; subject?: string; rollback?: boolean } = {}) {
      const r = await seedRequest(app, { customer: from, serverId: (opts.server ?? inbox).id, subject: opts.subject ?? 'Printer on fire' })
      const event: NewRequestEventLike = {
        server: opts.server ?? inbox,
        requestId: r.requestId,
        requestNumber: r.number,
        subject: opts.subject ?? 'Printer on fire',
        requester: { address: from, name: 'Customer' },
        inboundMessageId: r.inboundMessageId,
        suppressAutomaticMail: opts.suppress ?? false,
      }
      let result
      try {
        result = await db().transaction().execute(async (trx) => {
          const res = await app.services.outbox.autoAcknowledge(trx, event)
          if (opts.rollback) throw Object.assign(new Error('rolled back'), { res })
          return res
        })
      } catch (err) {
        if (!opts.rollback) throw err
        result = (err as { res: Awaited<ReturnType<typeof app.services.outbox.autoAcknowledge>> }).res
      }
      return { ...r, result }
    }

    it('when a new request comes from a customer, then one acknowledgement goes out, marked as automatic, threaded to the mail, with [#N] once', async () => {
      const r = await newRequest('ann@customer.test')
      assert.equal(r.result.queued, true)
      await app.services.outbox.processDue()
      const item = await app.services.outbox.get(r.result.outboxId!)
      assert.equal(item.kind, 'auto_ack')
      assert.equal(item.status, 'sent')
      const mail = receivedWithId(world, item.messageIdHeader)
      assert.equal(mail.length, 1)
      const raw = mail[0]!.raw
      assert.equal(header(raw, 'auto-submitted'), 'auto-replied')
      assert.equal(header(raw, 'x-auto-response-suppress'), 'All')
      assert.equal(header(raw, 'precedence'), undefined)
      assert.equal(header(raw, 'subject'), `[#${r.number}] Received: Printer on fire`)
      assert.equal(header(raw, 'in-reply-to'), `<${r.inboundMessageId}>`)
      assert.deepEqual(mail[0]!.to, ['ann@customer.test'])
      assert.match(raw.toString(), new RegExp(`Your request number is ${r.number} \\(Printer on fire\\)`))
      // It is part of the conversation, so an answer to it threads into the request.
      const message = await db().selectFrom('messages').selectAll().where('id', '=', r.result.messageRowId!).executeTakeFirstOrThrow()
      assert.equal(message.request_id, r.requestId)
      assert.equal(message.direction, 'outbound')
      assert.equal(message.message_id_header, item.messageIdHeader)
    })

    it('when the mail is an auto-reply, bounce or list mail, then no acknowledgement is sent', async () => {
      const r = await newRequest('vacation@customer.test', { suppress: true })
      assert.deepEqual(r.result, { queued: false, reason: 'automatic_mail' })
    })

    it('when the sender is one of our own addresses, then no acknowledgement is sent', async () => {
      for (const own of ['desk@example.test', 'SUPPORT@example.test']) {
        const r = await newRequest(own)
        assert.deepEqual(r.result, { queued: false, reason: 'own_address' }, own)
      }
    })

    it('when the same sender opens requests quickly, then at most one acknowledgement per 10 minutes and five per day go out', async () => {
      const from = 'busy@customer.test'
      assert.equal((await newRequest(from)).result.queued, true)
      assert.deepEqual((await newRequest(from.toUpperCase())).result, { queued: false, reason: 'rate_limited' })
      // Eleven minutes later the next one may go.
      await db().updateTable('auto_reply_log').set((eb) => ({ sent_at: eb('sent_at', '-', 11 * 60_000) })).where('recipient', '=', from).execute()
      assert.equal((await newRequest(from)).result.queued, true)
      // Five within the day: no more today, even spaced out.
      const now = Date.now()
      for (const minutesAgo of [60, 120, 180]) await db().insertInto('auto_reply_log').values({ server_id: inbox.id, recipient: from, sent_at: now - minutesAgo * 60_000 }).execute()
      await db().updateTable('auto_reply_log').set({ sent_at: now - 30 * 60_000 }).where('recipient', '=', from).where('sent_at', '>', now - 11 * 60_000).execute()
      assert.deepEqual((await newRequest(from)).result, { queued: false, reason: 'rate_limited' })
      const sent = await db().selectFrom('outbox').select('id').where('kind', '=', 'auto_ack').where('envelope_to', '=', from).execute()
      assert.equal(sent.length, 2)
    })

    it('when acknowledgements are off for the server, then none is sent', async () => {
      const quiet = await incomingServerRow(app, { email_address: 'quiet@example.test', auto_ack_enabled: 0 })
      assert.deepEqual((await newRequest('dee@customer.test', { server: quiet })).result, { queued: false, reason: 'disabled' })
    })

    it('when the request\'s transaction rolls back, then its acknowledgement is gone with it', async () => {
      const r = await newRequest('eve@customer.test', { rollback: true })
      assert.equal(r.result.queued, true)
      const rows = await db().selectFrom('outbox').select('id').where('envelope_to', '=', 'eve@customer.test').execute()
      assert.equal(rows.length, 0)
      const log = await db().selectFrom('auto_reply_log').select('id').where('recipient', '=', 'eve@customer.test').execute()
      assert.equal(log.length, 0)
    })

    it('when no outgoing server can send, then the request is still created and the acknowledgement is skipped', async () => {
      await app.services.emailServers.setEnabled(outgoing.id, false)
      try {
        assert.deepEqual((await newRequest('fay@customer.test')).result, { queued: false, reason: 'no_outgoing_server' })
      } finally {
        await app.services.emailServers.setEnabled(outgoing.id, true)
      }
    })
  })
}
