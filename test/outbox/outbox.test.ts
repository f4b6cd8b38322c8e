import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startTestApp } from '../support/app.ts'
import type { TestApp } from '../support/app.ts'
import { registerDeskmail, startMailWorld } from '../support/mail-world.ts'
import type { MailWorld } from '../support/mail-world.ts'
import { dialects } from '../support/dialects.ts'
import { OutboxSender } from '../../src/outbox/sender.ts'
import { OutboxService } from '../../src/outbox/outbox.ts'
import { isAppError } from '../../src/shared/errors.ts'
import type { EmailServer } from '../../src/storage/schema.ts'
import { connectedOutgoingServer, header, incomingServerRow, receivedWithId, seedRequest, storeFreshTokens } from './support.ts'

const DESK = 'desk@example.test'

for (const dialect of dialects) {
  describe(`outbox: replies over SMTP with XOAUTH2 on ${dialect}`, () => {
    let world: MailWorld
    let app: TestApp
    let outgoing: EmailServer
    before(async () => {
      world = await startMailWorld({ smtp: true })
      app = await startTestApp({ dialect, env: { DESKMAIL_MESSAGE_ID_DOMAIN: 'desk.example.test' } })
      registerDeskmail(world, app.url)
      outgoing = await connectedOutgoingServer(app, world, DESK, { isDefault: true, displayName: 'Example Support' })
    })
    after(async () => {
      app?.services.outbox.close()
      await app?.stop()
      await world?.stop()
    })

    const db = () => app.services.storage.db
    const outboxRow = (id: number) => db().selectFrom('outbox').selectAll().where('id', '=', id).executeTakeFirstOrThrow()

    it('when an agent replies, then the message and its outbox row are written together and the SMTP sink receives it once, authenticated, with threading headers', async () => {
      const r = await seedRequest(app, { customer: 'ann@customer.test', customerName: 'Ann Customer', subject: 'Printer on fire' })
      const before = await db().selectFrom('requests').select('last_activity_at').where('id', '=', r.requestId).executeTakeFirstOrThrow()
      const q = await app.services.outbox.queueReply({ requestId: r.requestId, authorUserId: 1, body: 'We are on it.', attachments: [{ filename: 'steps.txt', contentType: 'text/plain', content: Buffer.from('1. unplug') }] })

      const message = await db().selectFrom('messages').selectAll().where('id', '=', q.messageRowId!).executeTakeFirstOrThrow()
      assert.equal(message.direction, 'outbound')
      assert.equal(message.delivery_status, 'queued')
      assert.equal(message.message_id_header, q.messageIdHeader)
      assert.match(q.messageIdHeader, new RegExp(`^r${r.number}\\.m${q.messageRowId}\\.[0-9a-f]+@desk\\.example\\.test$`))
      assert.equal(message.in_reply_to, r.inboundMessageId)
      const row = await outboxRow(q.outboxId)
      assert.equal(row.status, 'queued')
      assert.equal(row.kind, 'reply')
      assert.equal(row.message_id, q.messageRowId)
      assert.equal(row.message_id_header, q.messageIdHeader)
      assert.equal(row.envelope_to, 'ann@customer.test')
      assert.equal((await db().selectFrom('attachments').select('filename').where('message_id', '=', q.messageRowId!).execute())[0]?.filename, 'steps.txt')
      const afterQueue = await db().selectFrom('requests').select('last_activity_at').where('id', '=', r.requestId).executeTakeFirstOrThrow()
      assert.ok(afterQueue.last_activity_at > before.last_activity_at)

      assert.equal(await app.services.outbox.processDue(), 1)
      const got = receivedWithId(world, q.messageIdHeader)
      assert.equal(got.length, 1)
      const mail = got[0]!
      assert.equal(mail.authUser, DESK, 'authenticated with a token the provider vouches for')
      assert.deepEqual(mail.to, ['ann@customer.test'])
      assert.equal(mail.from, DESK)
      assert.equal(header(mail.raw, 'subject'), `Re: [#${r.number}] Printer on fire`)
      assert.equal(header(mail.raw, 'from'), `Example Support <${DESK}>`)
      assert.equal(header(mail.raw, 'in-reply-to'), `<${r.inboundMessageId}>`)
      assert.equal(header(mail.raw, 'references'), `<${r.inboundMessageId}>`)
      assert.match(mail.raw.toString(), /filename=steps\.txt/)

      const sent = await outboxRow(q.outboxId)
      assert.equal(sent.status, 'sent')
      assert.match(sent.smtp_response ?? '', /^250/)
      assert.equal(sent.attempts, 1)
      assert.ok(sent.attempt_started_at && sent.sent_at && sent.attempt_started_at <= sent.sent_at)
      assert.equal((await db().selectFrom('messages').select('delivery_status').where('id', '=', q.messageRowId!).executeTakeFirstOrThrow()).delivery_status, 'sent')
      assert.equal(await app.services.outbox.processDue(), 0)
      assert.equal(receivedWithId(world, q.messageIdHeader).length, 1, 'never twice')
      assert.equal((await app.services.outbox.statusForMessages([q.messageRowId!])).get(q.messageRowId!)?.status, 'sent')
      const metrics = await app.services.metrics.registry.getSingleMetricAsString('deskmail_outbox_sent_total')
      assert.match(metrics, /result="sent"\} [1-9]/)
    })

    it('when the agent replies twice, then the second reply answers the customer\'s latest mail and References carries the conversation', async () => {
      const r = await seedRequest(app, { customer: 'bob@customer.test', subject: 'Re: [#999] Laptop' })
      const first = await app.services.outbox.queueReply({ requestId: r.requestId, authorUserId: 1, body: 'First answer' })
      const customerReply = `bob-2.${Date.now()}@customer.test`
      await db()
        .insertInto('messages')
        .values({ request_id: r.requestId, direction: 'inbound', message_id_header: customerReply, references_header: `<${r.inboundMessageId}> <${first.messageIdHeader}>`, in_reply_to: first.messageIdHeader, from_address: 'bob@customer.test', subject: 'Re: x', text_body: 'thanks', delivery_status: 'received', created_at: Date.now() + 1 })
        .execute()
      const second = await app.services.outbox.queueReply({ requestId: r.requestId, authorUserId: 1, body: 'Second answer' })
      await app.services.outbox.processDue()
      const mail = receivedWithId(world, second.messageIdHeader)[0]!
      assert.equal(header(mail.raw, 'in-reply-to'), `<${customerReply}>`)
      assert.equal(header(mail.raw, 'references'), `<${r.inboundMessageId}> <${first.messageIdHeader}> <${customerReply}>`)
      assert.equal(header(mail.raw, 'subject'), `Re: [#${r.number}] [#999] Laptop`)
      assert.equal((header(mail.raw, 'subject')!.match(new RegExp(`\\[#${r.number}\\]`, 'g')) ?? []).length, 1)
    })

    it('when a reply is empty, or no outgoing server can send it, then queueing is refused with a clear error and nothing is written', async () => {
      const r = await seedRequest(app, { customer: 'cy@customer.test' })
      const count = async () => Number((await db().selectFrom('outbox').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)
      const n = await count()
      await assert.rejects(app.services.outbox.queueReply({ requestId: r.requestId, authorUserId: 1, body: '  ' }), (e) => isAppError(e, 'outbox_empty_reply'))
      await app.services.emailServers.setEnabled(outgoing.id, false)
      try {
        await assert.rejects(app.services.outbox.queueReply({ requestId: r.requestId, authorUserId: 1, body: 'Hi' }), (e) => isAppError(e, 'outbox_no_outgoing_server') && /Outgoing Email Servers/.test(e.message))
      } finally {
        await app.services.emailServers.setEnabled(outgoing.id, true)
      }
      await assert.rejects(app.services.outbox.queueReply({ requestId: 987654, authorUserId: 1, body: 'Hi' }), (e) => isAppError(e, 'request_not_found'))
      assert.equal(await count(), n)
    })

    it('when the SMTP server is down for a while, then the reply waits visibly with the error and is delivered exactly once when it is back', async () => {
      const r = await seedRequest(app, { customer: 'dee@customer.test' })
      world.smtp!.setDown(true)
      let q
      try {
        q = await app.services.outbox.queueReply({ requestId: r.requestId, authorUserId: 1, body: 'Delayed' })
        await app.services.outbox.processDue()
        const waiting = await app.services.outbox.get(q.outboxId)
        assert.equal(waiting.status, 'queued')
        assert.equal(waiting.statusLabel, 'Retrying')
        assert.match(waiting.lastError ?? '', /421|not available|temporar/i)
        assert.ok(waiting.nextAttemptAt! > Date.now(), 'retried later, with backoff')
        assert.equal(receivedWithId(world, q.messageIdHeader).length, 0)
        // Not due yet: nothing is attempted.
        assert.equal(await app.services.outbox.processDue(), 0)
      } finally {
        world.smtp!.setDown(false)
      }
      // Time passes: the retry falls due.
      await db().updateTable('outbox').set({ next_attempt_at: Date.now() }).where('id', '=', q.outboxId).execute()
      await app.services.outbox.processDue()
      assert.equal((await app.services.outbox.get(q.outboxId)).status, 'sent')
      assert.equal((await outboxRow(q.outboxId)).attempts, 2)
      await app.services.outbox.processDue()
      assert.equal(receivedWithId(world, q.messageIdHeader).length, 1)
    })

    it('when a sender died during an attempt, then the item becomes uncertain and is not resent until someone clicks Send again', async () => {
      const r = await seedRequest(app, { customer: 'eve@customer.test' })
      const q = await app.services.outbox.queueReply({ requestId: r.requestId, authorUserId: 1, body: 'Maybe sent' })
      // What a sender that crashed between the server's "250" and its commit leaves behind.
      await db().updateTable('outbox').set({ status: 'sending', claimed_by: 'dead-worker', claim_until: Date.now() - 1, attempt_started_at: Date.now() - 70_000, attempts: 1 }).where('id', '=', q.outboxId).execute()
      await app.services.outbox.processDue()
      const item = await app.services.outbox.get(q.outboxId)
      assert.equal(item.status, 'uncertain')
      assert.equal(item.canSendAgain, true)
      assert.match(item.lastError ?? '', /cannot know whether the server accepted/)
      await app.services.outbox.processDue()
      assert.equal(receivedWithId(world, q.messageIdHeader).length, 0, 'not resent automatically')

      const again = await app.services.outbox.resend(q.outboxId)
      assert.equal(again.status, 'queued')
      await app.services.outbox.processDue()
      assert.equal((await app.services.outbox.get(q.outboxId)).status, 'sent')
      assert.equal(receivedWithId(world, q.messageIdHeader).length, 1, 'the same Message-ID, once')
      await assert.rejects(app.services.outbox.resend(q.outboxId), (e) => isAppError(e, 'outbox_not_resendable'))
    })

    it('when a still-running sender holds an item, then another round neither sends it nor marks it uncertain', async () => {
      const r = await seedRequest(app, { customer: 'fay@customer.test' })
      const q = await app.services.outbox.queueReply({ requestId: r.requestId, authorUserId: 1, body: 'Busy' })
      await db().updateTable('outbox').set({ status: 'sending', claimed_by: 'other-worker', claim_until: Date.now() + 60_000 }).where('id', '=', q.outboxId).execute()
      await app.services.outbox.processDue()
      assert.equal((await app.services.outbox.get(q.outboxId)).status, 'sending')
      assert.equal(receivedWithId(world, q.messageIdHeader).length, 0)
      await db().updateTable('outbox').set({ status: 'sent', claimed_by: null }).where('id', '=', q.outboxId).execute()
    })

    it('when the token is revoked, then the reply waits for authorization (no retries) and goes out after Reconnect', async () => {
      // A second account with its own outgoing server, chosen by the incoming server of the request.
      const account = 'sales@example.test'
      const salesOut = await connectedOutgoingServer(app, world, account, { name: 'Sales out' })
      const inbox = await incomingServerRow(app, { email_address: 'sales-in@example.test', outgoing_server_id: salesOut.id })
      const r = await seedRequest(app, { customer: 'gus@customer.test', serverId: inbox.id })
      world.oauth.revokeAll(account)

      const q = await app.services.outbox.queueReply({ requestId: r.requestId, authorUserId: 1, body: 'After revocation' })
      assert.equal((await outboxRow(q.outboxId)).server_id, salesOut.id)
      await app.services.outbox.processDue()
      const waiting = await app.services.outbox.get(q.outboxId)
      assert.equal(waiting.status, 'waiting_authorization')
      assert.equal(waiting.statusLabel, 'Waiting for authorization')
      assert.match(waiting.lastError ?? '', /Reconnect|authoriz/i)
      assert.equal((await app.services.emailServers.summary(salesOut.id)).status, 'needs_reauthorization')
      // No retries while waiting.
      await db().updateTable('outbox').set({ next_attempt_at: 0 }).where('id', '=', q.outboxId).execute()
      assert.equal(await app.services.outbox.processDue(), 0)
      assert.equal((await outboxRow(q.outboxId)).attempts, 1)

      // Reconnect: the admin consents again; the credential is connected.
      await storeFreshTokens(app, world, salesOut, account)
      await app.services.outbox.processDue()
      assert.equal((await app.services.outbox.get(q.outboxId)).status, 'sent')
      const got = receivedWithId(world, q.messageIdHeader)
      assert.equal(got.length, 1)
      assert.equal(got[0]!.authUser, account)
      assert.equal(got[0]!.from, account)
    })

    it('when the token provider is down and the token expired, then the reply is retried later instead of failing', async () => {
      const r = await seedRequest(app, { customer: 'hal@customer.test' })
      const creds = outgoing.credential_id!
      const saved = await db().selectFrom('credentials').select(['token_url', 'access_token_expires_at']).where('id', '=', creds).executeTakeFirstOrThrow()
      await db().updateTable('credentials').set({ token_url: 'http://127.0.0.1:9/token', access_token_expires_at: Date.now() - 1 }).where('id', '=', creds).execute()
      try {
        const q = await app.services.outbox.queueReply({ requestId: r.requestId, authorUserId: 1, body: 'Provider down' })
        await app.services.outbox.processDue()
        const item = await app.services.outbox.get(q.outboxId)
        assert.equal(item.status, 'queued')
        assert.ok(item.lastError)
        assert.equal(receivedWithId(world, q.messageIdHeader).length, 0)
        await db().updateTable('outbox').set({ status: 'sent' }).where('id', '=', q.outboxId).execute()
      } finally {
        await db().updateTable('credentials').set({ token_url: saved.token_url, status: 'connected', next_attempt_at: null, consecutive_failures: 0 }).where('id', '=', creds).execute()
        await storeFreshTokens(app, world, outgoing, DESK)
      }
    })

    it('when the sender task runs, then a newly queued reply goes out without waiting for a poll', async () => {
      const sender = new OutboxSender(app.services.outbox, app.services.logger, { pollMs: 60_000 })
      await sender.start()
      try {
        // The first round runs at start; the reply comes after it, so only the wake-up can send it.
        await new Promise((resolve) => setTimeout(resolve, 100))
        const r = await seedRequest(app, { customer: 'ivy@customer.test' })
        const q = await app.services.outbox.queueReply({ requestId: r.requestId, authorUserId: 1, body: 'Quick' })
        const mail = await world.smtp!.waitForMessage((m) => header(m.raw, 'message-id') === `<${q.messageIdHeader}>`, 5_000)
        assert.equal(mail.authUser, DESK)
      } finally {
        await sender.stop()
      }
    })

    it('when two senders work the same outbox at once, then every reply is sent exactly once', async () => {
      const s = app.services
      const second = new OutboxService({ db: s.storage.db, caps: s.storage.caps, messageIdDomain: s.config.messageIdDomain, emailServers: s.emailServers, credentials: s.credentials, logger: s.logger })
      try {
        const queued = []
        for (let i = 0; i < 12; i++) {
          const r = await seedRequest(app, { customer: `many${i}@customer.test` })
          queued.push(await s.outbox.queueReply({ requestId: r.requestId, authorUserId: 1, body: `Reply ${i}` }))
        }
        const rounds = async (o: OutboxService) => {
          let n = 0
          for (let i = 0; i < 6; i++) n += await o.processDue(3)
          return n
        }
        const [a, b] = await Promise.all([rounds(s.outbox), rounds(second)])
        assert.equal(a + b, 12, `attempts: ${a} + ${b}`)
        for (const q of queued) {
          assert.equal((await s.outbox.get(q.outboxId)).status, 'sent')
          assert.equal(receivedWithId(world, q.messageIdHeader).length, 1, q.messageIdHeader)
        }
      } finally {
        second.close()
      }
    })

    it('when a test email is sent through an outgoing server, then the server\'s answer is reported', async () => {
      const q = await app.services.outbox.queueTest(outgoing.id, 'admin@customer.test', { requestedBy: 'admin@example.test' })
      const result = await app.services.outbox.deliverNow(q.outboxId)
      assert.equal(result.status, 'sent', result.lastError ?? '')
      assert.match(result.smtpResponse ?? '', /^250/)
      const got = receivedWithId(world, q.messageIdHeader)
      assert.equal(got.length, 1)
      assert.match(header(got[0]!.raw, 'subject') ?? '', /deskmail test email/)
      await assert.rejects(app.services.outbox.queueTest(outgoing.id, 'x@y\r\nBcc: z@w.test'), (e) => isAppError(e, 'outbox_header_injection'))
      await assert.rejects(app.services.outbox.queueTest(outgoing.id, 'nobody'), (e) => isAppError(e, 'outbox_invalid_address'))
    })
  })
}
