import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { dialects, openTestStorage } from '../support/dialects.ts'
import { migrate } from '../../src/storage/database.ts'

for (const dialect of dialects) {
  describe(`storage on ${dialect}`, () => {
    let t: Awaited<ReturnType<typeof openTestStorage>>
    before(async () => {
      t = await openTestStorage(dialect)
    })
    after(async () => t?.cleanup())

    it('when migrations run again, then nothing is applied twice', async () => {
      assert.deepEqual(await migrate(t.storage), [])
    })

    it('when rows are written, then timestamps and counts read back as numbers and blobs as Buffers', async () => {
      const db = t.storage.db
      const now = Date.now()
      await db.insertInto('raw_mail').values({ hash: 'h1', size: 3, content: Buffer.from([0, 1, 255]), created_at: now }).execute()
      const row = await db.selectFrom('raw_mail').selectAll().where('hash', '=', 'h1').executeTakeFirstOrThrow()
      assert.equal(row.created_at, now)
      assert.ok(Buffer.isBuffer(row.content))
      assert.deepEqual([...row.content], [0, 1, 255])
      const c = await db.selectFrom('raw_mail').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
      assert.equal(c.n, 1)
    })

    it('when the same mailbox message is recorded twice, then the unique key refuses the replay', async () => {
      const db = t.storage.db
      const row = { server_id: 1, source_key: 'imap:7:42', raw_hash: 'h1', size: 3, received_at: Date.now(), outcome: 'pending' as const }
      await db.insertInto('inbound_mail').values(row).execute()
      await assert.rejects(db.insertInto('inbound_mail').values(row).execute())
    })

    it('when a transaction fails, then none of its writes remain', async () => {
      const db = t.storage.db
      await assert.rejects(
        db.transaction().execute(async (trx) => {
          await trx.insertInto('contacts').values({ email: 'a@example.test', name: 'A', created_at: 1 }).execute()
          throw new Error('boom')
        }),
      )
      const found = await db.selectFrom('contacts').selectAll().where('email', '=', 'a@example.test').execute()
      assert.equal(found.length, 0)
    })
  })
}
