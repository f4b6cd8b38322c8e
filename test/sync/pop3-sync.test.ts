import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startTestApp } from '../support/app.ts'
import type { TestApp } from '../support/app.ts'
import { connectIncoming, incomingForm, registerDeskmail, startMailWorld } from '../support/mail-world.ts'
import type { MailWorld } from '../support/mail-world.ts'
import { dialects } from '../support/dialects.ts'
import { auditRows, customerMail, maildirCount, requestCount, serverIdOf, serverStatus, waitFor } from './support.ts'

const WORKER_ENV = { DESKMAIL_HEARTBEAT_SECONDS: '1', DESKMAIL_LEASE_SECONDS: '5' }

for (const dialect of dialects) {
  describe(`POP3 mailbox sync on ${dialect}`, () => {
    let world: MailWorld
    let app: TestApp
    before(async () => {
      world = await startMailWorld()
      app = await startTestApp({ dialect, workers: true, env: WORKER_ENV })
      registerDeskmail(world, app.url)
    })
    after(async () => {
      await app?.stop()
      await world?.stop()
    })

    const db = () => app.services.storage.db
    /**
     * The portal allows 10 s at least between polls; the test shortens it in the database, which the
     * supervisor sees as changed settings (it reconnects, and polls every second from then on).
     */
    const pollEverySecond = (id: number) => db().updateTable('email_servers').set({ poll_interval_seconds: 1 }).where('id', '=', id).execute()

    it('when the server leaves mail on the server, then each message is ingested exactly once across polls (UIDL)', async () => {
      const mailbox = 'pop-leave@example.test'
      const first = [customerMail(), customerMail()]
      for (const m of first) await world.dovecot.deliver(mailbox, m.raw)
      const admin = await app.admin()
      await connectIncoming(world, admin, incomingForm(world, mailbox, { protocol: 'pop3', ack_action: 'leave' }))
      const id = await serverIdOf(app, mailbox)
      await pollEverySecond(id)
      for (const m of first) await waitFor(m.subject, async () => (await auditRows(db(), id)).some((r) => r.subject === m.subject))

      const third = customerMail()
      await world.dovecot.deliver(mailbox, third.raw)
      await waitFor(third.subject, async () => (await auditRows(db(), id)).some((r) => r.subject === third.subject))
      // A few more polls over the same three messages.
      const polls = (await serverStatus(app, id)).last_success_at ?? 0
      await waitFor('two more polls', async () => ((await serverStatus(app, id)).last_success_at ?? 0) > polls + 1_500, 10_000)

      const rows = await auditRows(db(), id)
      assert.equal(rows.length, 3)
      for (const m of [...first, third]) assert.equal(await requestCount(db(), m.subject), 1)
      assert.ok(rows.every((r) => r.source_key.startsWith('pop3:')))
      assert.equal(maildirCount(world.dovecot.maildir(mailbox)), 3, 'nothing deleted')
      const uidls = await db().selectFrom('pop3_uidls').select('uidl').where('server_id', '=', id).execute()
      assert.equal(uidls.length, 3)
      assert.equal((await serverStatus(app, id)).status, 'connected')
    })

    it('when the server deletes fetched mail, then messages are removed only after they were ingested', async () => {
      const mailbox = 'pop-delete@example.test'
      const mails = [customerMail(), customerMail(), customerMail()]
      for (const m of mails) await world.dovecot.deliver(mailbox, m.raw)
      const admin = await app.admin()
      await connectIncoming(world, admin, incomingForm(world, mailbox, { protocol: 'pop3', ack_action: 'delete' }))
      const id = await serverIdOf(app, mailbox)
      await pollEverySecond(id)
      await waitFor('mailbox emptied', async () => maildirCount(world.dovecot.maildir(mailbox)) === 0)
      const rows = await auditRows(db(), id)
      assert.deepEqual(rows.map((r) => r.subject).sort(), mails.map((m) => m.subject).sort())
      assert.ok(rows.every((r) => r.outcome === 'new_request'))

      const later = customerMail()
      await world.dovecot.deliver(mailbox, later.raw)
      await waitFor(later.subject, async () => (await auditRows(db(), id)).some((r) => r.subject === later.subject))
      await waitFor('mailbox emptied again', async () => maildirCount(world.dovecot.maildir(mailbox)) === 0)
      assert.equal((await auditRows(db(), id)).length, 4)
      // UIDLs of deleted messages are forgotten once the server no longer lists them.
      await waitFor('UIDLs pruned', async () => (await db().selectFrom('pop3_uidls').select('uidl').where('server_id', '=', id).execute()).length === 0, 10_000)
    })
  })
}
