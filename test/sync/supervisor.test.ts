import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startTestApp } from '../support/app.ts'
import type { TestApp } from '../support/app.ts'
import { connectIncoming, incomingForm, registerDeskmail, startMailWorld } from '../support/mail-world.ts'
import type { MailWorld } from '../support/mail-world.ts'
import { dialects } from '../support/dialects.ts'
import { auditRows, customerMail, serverIdOf, waitFor } from './support.ts'

for (const dialect of dialects) {
  describe(`mailbox supervisor on ${dialect}`, () => {
    let world: MailWorld
    let app: TestApp
    before(async () => {
      world = await startMailWorld()
      // `worker --concurrency 1`: this worker may hold one mailbox at a time.
      app = await startTestApp({
        dialect,
        workers: true,
        env: { DESKMAIL_HEARTBEAT_SECONDS: '1', DESKMAIL_LEASE_SECONDS: '5', DESKMAIL_WORKER_CONCURRENCY: '1' },
      })
      registerDeskmail(world, app.url)
    })
    after(async () => {
      await app?.stop()
      await world?.stop()
    })

    const db = () => app.services.storage.db
    const owner = async (id: number) => (await db().selectFrom('mailbox_leases').select('owner').where('server_id', '=', id).executeTakeFirst())?.owner ?? null
    const ingested = (id: number, subject: string) => waitFor(`"${subject}"`, async () => (await auditRows(db(), id)).some((r) => r.subject === subject))

    it('when the worker concurrency is 1, then it holds one mailbox and the other waits', async () => {
      const admin = await app.admin()
      await connectIncoming(world, admin, incomingForm(world, 'first@example.test'))
      const first = await serverIdOf(app, 'first@example.test')
      await waitFor('first mailbox held', async () => owner(first))
      await connectIncoming(world, admin, incomingForm(world, 'second@example.test'))
      const second = await serverIdOf(app, 'second@example.test')
      await waitFor('lease row of the second mailbox', async () => db().selectFrom('mailbox_leases').select('server_id').where('server_id', '=', second).executeTakeFirst())
      // Several heartbeats later, still one.
      await new Promise((r) => setTimeout(r, 2_500))
      assert.equal(await owner(second), null)
      const page = await admin.get('/admin/workers')
      assert.equal(page.status, 200)
      assert.match(page.text, /<h1>Workers<\/h1>/)
      const workerRow = /<tr data-worker-id="([^"]+)">([\s\S]*?)<\/tr>/.exec(page.text)
      assert.ok(workerRow, 'the worker is listed')
      assert.equal(workerRow![1], await owner(first))
      assert.match(workerRow![2], /<td>1<\/td><td>1<\/td><td>Live<\/td>/)
      assert.match(page.text, new RegExp(`data-server-id="${second}">[\\s\\S]*?waiting for a worker`))
      const agentView = await app.client().get('/admin/workers')
      assert.notEqual(agentView.status, 200, 'the page is for signed-in admins')
    })

    it('when the held server is disabled, then its session stops, its lease goes and the waiting mailbox is taken', async () => {
      const first = await serverIdOf(app, 'first@example.test')
      const second = await serverIdOf(app, 'second@example.test')
      const waiting = customerMail()
      await world.dovecot.deliver('second@example.test', waiting.raw)
      await app.services.emailServers.setEnabled(first, false)
      await waitFor('first released', async () => (await owner(first)) === null)
      await waitFor('second held', async () => owner(second))
      await ingested(second, waiting.subject)
      // Mail for the disabled server stays on the server.
      const ignored = customerMail()
      await world.dovecot.deliver('first@example.test', ignored.raw)
      const pushed = customerMail()
      await world.dovecot.deliver('second@example.test', pushed.raw)
      await ingested(second, pushed.subject)
      assert.ok(!(await auditRows(db(), first)).some((r) => r.subject === ignored.subject))
    })

    it('when the held server is deleted, then the re-enabled one is picked up and its waiting mail arrives', async () => {
      const first = await serverIdOf(app, 'first@example.test')
      const second = await serverIdOf(app, 'second@example.test')
      await app.services.emailServers.setEnabled(first, true)
      await app.services.emailServers.delete(second)
      await waitFor('first held again', async () => owner(first))
      const rows = await waitFor('mail that waited in the disabled mailbox', async () => {
        const r = await auditRows(db(), first)
        return r.length > 0 ? r : undefined
      })
      assert.equal(rows.length, 1)
      assert.equal((await db().selectFrom('mailbox_leases').select('server_id').where('server_id', '=', second).execute()).length, 0)
    })
  })
}
