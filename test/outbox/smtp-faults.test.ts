import { describe, it, before, after, beforeEach } from 'node:test'
import assert from 'node:assert/strict'
import { startTestApp } from '../support/app.ts'
import type { TestApp } from '../support/app.ts'
import { dialects } from '../support/dialects.ts'
import type { EmailServer } from '../../src/storage/schema.ts'
import { startFakeSmtp } from './fake-smtp.ts'
import type { FakeSmtp } from './fake-smtp.ts'
import { header, outgoingValues, seedRequest } from './support.ts'

/** What mail servers answer that the SMTP stand-in never does, and what the agent and admin then see. */
for (const dialect of dialects) {
  describe(`outbox: SMTP server faults on ${dialect}`, () => {
    let app: TestApp
    let smtp: FakeSmtp
    let server: EmailServer
    before(async () => {
      smtp = await startFakeSmtp()
      app = await startTestApp({ dialect })
      const created = await app.services.emailServers.create(outgoingValues({ emailAddress: 'desk@tenant.test', port: smtp.port, security: 'none', provider: 'microsoft365', isDefault: true }))
      // A token that looks valid; the fake server decides what happens to it.
      await app.services.credentials.storeAuthorization(
        created.credential_id!,
        { accessToken: 'looks-valid', tokenType: 'bearer', refreshToken: 'refresh', expiresAt: new Date(Date.now() + 3600_000) },
        { email: 'desk@tenant.test', subject: 'desk' },
      )
      server = await app.services.emailServers.get(created.id)
    })
    beforeEach(() => {
      smtp.behaviour = 'accept'
    })
    after(async () => {
      app?.services.outbox.close()
      await app?.stop()
      await smtp?.close()
    })

    const reply = async (customer: string) => {
      const r = await seedRequest(app, { customer })
      return app.services.outbox.queueReply({ requestId: r.requestId, authorUserId: 1, body: 'Hello' })
    }

    it('when Microsoft answers 535 5.7.139, then the reply fails with the tenant setting to change, the token is not refreshed, and the server shows the error', async () => {
      smtp.behaviour = 'auth-disabled-5.7.139'
      const before = await app.services.credentials.get(server.credential_id!)
      const q = await reply('ann@customer.test')
      await app.services.outbox.processDue()
      const item = await app.services.outbox.get(q.outboxId)
      assert.equal(item.status, 'failed')
      assert.match(item.lastError ?? '', /SMTP AUTH is disabled/)
      assert.match(item.lastError ?? '', /5\.7\.139/)
      assert.equal(item.canSendAgain, true)
      const after = await app.services.credentials.get(server.credential_id!)
      assert.equal(after!.status, 'connected', 'a tenant setting is not a token problem')
      assert.equal(after!.refreshed_at, before!.refreshed_at, 'no refresh was attempted')
      const summary = await app.services.emailServers.summary(server.id)
      assert.equal(summary.status, 'error')
      assert.equal(summary.statusCode, 'ms_smtp_auth_disabled')
      const message = await app.services.storage.db.selectFrom('messages').select(['delivery_status', 'delivery_error']).where('id', '=', q.messageRowId!).executeTakeFirstOrThrow()
      assert.equal(message.delivery_status, 'failed')
      assert.match(message.delivery_error ?? '', /SMTP AUTH/)

      // The admin turns SMTP AUTH on; Send again delivers it.
      smtp.behaviour = 'accept'
      await app.services.outbox.resend(q.outboxId)
      await app.services.outbox.processDue()
      assert.equal((await app.services.outbox.get(q.outboxId)).status, 'sent')
      assert.equal((await app.services.emailServers.summary(server.id)).status, 'connected')
    })

    it('when the server refuses the recipient with 550, then the reply fails with the server\'s answer and the server status stays as it was', async () => {
      smtp.behaviour = 'reject-recipient-550'
      const q = await reply('nobody@customer.test')
      await app.services.outbox.processDue()
      const item = await app.services.outbox.get(q.outboxId)
      assert.equal(item.status, 'failed')
      assert.match(item.lastError ?? '', /550 5\.1\.1 .*User unknown/)
      assert.equal(item.smtpResponse?.startsWith('550'), true)
      assert.notEqual((await app.services.emailServers.summary(server.id)).status, 'error')
    })

    it('when the server answers 451 after the data, then the reply is retried later', async () => {
      smtp.behaviour = 'temporary-451-after-data'
      const q = await reply('bob@customer.test')
      await app.services.outbox.processDue()
      const item = await app.services.outbox.get(q.outboxId)
      assert.equal(item.status, 'queued')
      assert.match(item.lastError ?? '', /451/)
      smtp.behaviour = 'accept'
      await app.services.storage.db.updateTable('outbox').set({ next_attempt_at: Date.now() }).where('id', '=', q.outboxId).execute()
      await app.services.outbox.processDue()
      assert.equal((await app.services.outbox.get(q.outboxId)).status, 'sent')
    })

    it('when the connection dies after the final dot, then the reply is marked of unknown outcome and not resent by itself; Send again repeats the same Message-ID', async () => {
      smtp.behaviour = 'drop-after-data'
      const q = await reply('cy@customer.test')
      await app.services.outbox.processDue()
      const item = await app.services.outbox.get(q.outboxId)
      assert.equal(item.status, 'uncertain', item.lastError ?? '')
      assert.match(item.lastError ?? '', /may have been delivered/)
      const copies = () => smtp.received.filter((m) => header(m.raw, 'message-id') === `<${q.messageIdHeader}>`)
      assert.equal(copies().length, 1)
      smtp.behaviour = 'accept'
      await app.services.outbox.processDue()
      assert.equal(copies().length, 1, 'no automatic resend')
      await app.services.outbox.resend(q.outboxId)
      await app.services.outbox.processDue()
      assert.equal((await app.services.outbox.get(q.outboxId)).status, 'sent')
      assert.equal(copies().length, 2)
      assert.equal(header(copies()[0]!.raw, 'message-id'), header(copies()[1]!.raw, 'message-id'))
    })
  })
}
