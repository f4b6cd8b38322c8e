import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { openStorage } from '../../src/storage/database.ts'
import type { Storage } from '../../src/storage/database.ts'
import { LeaseManager } from '../../src/mailboxes/leases.ts'
import { WorkerRegistry, fairShare } from '../../src/mailboxes/worker-registry.ts'
import { createMetrics } from '../../src/shared/metrics.ts'
import { isAppError } from '../../src/shared/errors.ts'
import { dialects, openTestStorage } from '../support/dialects.ts'

const LEASE_MS = 30_000

async function addServers(storage: Storage, n: number, opts: { enabled?: number; direction?: 'incoming' | 'outgoing' } = {}): Promise<number[]> {
  const now = Date.now()
  const ids: number[] = []
  for (let i = 0; i < n; i++) {
    const row = await storage.db
      .insertInto('email_servers')
      .values({
        direction: opts.direction ?? 'incoming',
        name: `Mailbox ${i}`,
        email_address: `box${i}-${Math.random().toString(36).slice(2, 8)}@example.test`,
        protocol: opts.direction === 'outgoing' ? 'smtp' : 'imap',
        host: '127.0.0.1',
        port: 993,
        security: 'tls',
        auth_type: 'password',
        enabled: opts.enabled ?? 1,
        status: 'connected',
        ack_action: 'leave',
        created_at: now,
        updated_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    ids.push(row.id)
  }
  return ids
}

/** A clock `offsetMs` ahead of the real one: the other worker sees our leases as expired. */
const ahead = (offsetMs: number) => () => Date.now() + offsetMs

describe('fair share of mailboxes between workers', () => {
  it('when workers have equal concurrency, then each holds at most ceil(mailboxes / workers)', () => {
    assert.equal(fairShare(20, [1000, 1000, 1000], 1000), 7)
    assert.equal(fairShare(21, [1000, 1000, 1000], 1000), 7)
    assert.equal(fairShare(1, [1000, 1000], 1000), 1)
    assert.equal(fairShare(0, [1000], 1000), 0)
  })

  it('when one worker has a small concurrency, then the others take the rest of its share', () => {
    assert.equal(fairShare(30, [1, 1000, 1000], 1000), 15)
    assert.equal(fairShare(30, [1, 1000, 1000], 1), 1)
  })

  it('when the mailboxes exceed every worker capacity, then each holds its concurrency', () => {
    assert.equal(fairShare(100, [10, 10], 10), 10)
  })
})

for (const dialect of dialects) {
  describe(`mailbox leases on ${dialect}`, () => {
    let storage: Storage
    let second: Storage
    let cleanup: () => Promise<void>
    before(async () => {
      const t = await openTestStorage(dialect)
      storage = t.storage
      cleanup = t.cleanup
      // PostgreSQL: a second pool stands for a second worker process. SQLite mode is one process.
      second = dialect === 'postgres' ? await openStorage(t.url) : storage
    })
    after(async () => {
      if (second !== storage) await second?.close()
      await cleanup?.()
    })

    const manager = (s: Storage, opts: { now?: () => number; metrics?: ReturnType<typeof createMetrics> } = {}) =>
      new LeaseManager(s.db, s.caps, { leaseMs: LEASE_MS, ...opts })

    it('when servers are added, then ensureRows gives each incoming server one lease row', async () => {
      const ids = await addServers(storage, 3)
      const [outgoing] = await addServers(storage, 1, { direction: 'outgoing' })
      const leases = manager(storage)
      assert.equal(await leases.ensureRows(), 3)
      assert.equal(await leases.ensureRows(), 0)
      const rows = await storage.db.selectFrom('mailbox_leases').select('server_id').execute()
      for (const id of ids) assert.ok(rows.some((r) => r.server_id === id))
      assert.ok(!rows.some((r) => r.server_id === outgoing))
      await storage.db.deleteFrom('email_servers').execute()
      await leases.ensureRows()
      assert.equal((await storage.db.selectFrom('mailbox_leases').selectAll().execute()).length, 0)
    })

    it('when two workers claim at the same moment, then they never hold the same mailbox and together hold all', async () => {
      const ids = await addServers(storage, 40)
      await addServers(storage, 2, { enabled: 0 })
      const a = manager(storage)
      const b = manager(second)
      await a.ensureRows()
      for (let round = 0; round < 3; round++) {
        const [ca, cb] = await Promise.all([a.claim('worker-a', 30), b.claim('worker-b', 30)])
        const heldA = new Set(ca.map((c) => c.serverId))
        const heldB = new Set(cb.map((c) => c.serverId))
        if (round === 0) {
          for (const id of heldA) assert.ok(!heldB.has(id), `mailbox ${id} claimed by both workers`)
          assert.equal(heldA.size + heldB.size, ids.length, 'the enabled mailboxes are all held, the disabled ones not')
        } else {
          // Nothing is left to claim while the leases are fresh.
          assert.equal(ca.length + cb.length, 0)
        }
      }
      const owners = await storage.db.selectFrom('mailbox_leases').select(['server_id', 'owner']).where('server_id', 'in', ids).execute()
      assert.ok(owners.every((o) => o.owner === 'worker-a' || o.owner === 'worker-b'))
      await a.release('worker-a')
      await b.release('worker-b')
      await storage.db.deleteFrom('email_servers').execute()
      await a.ensureRows()
    })

    it('when a lease expires, then another worker takes it over with a higher epoch and the first one learns it lost it', async () => {
      const [id] = await addServers(storage, 1)
      const metrics = createMetrics()
      const a = manager(storage)
      const b = manager(second, { metrics })
      await a.ensureRows()
      const [mine] = await a.claim('worker-a', 10)
      assert.equal(mine!.serverId, id)
      assert.deepEqual(await b.claim('worker-b', 10), [], 'a fresh lease is not taken')
      // Worker A stops renewing (paused); B's clock says A's lease has expired.
      const [taken] = await manager(second, { now: ahead(2 * LEASE_MS), metrics }).claim('worker-b', 10)
      assert.equal(taken!.serverId, id)
      assert.ok(taken!.epoch > mine!.epoch, `epoch ${taken!.epoch} after ${mine!.epoch}`)
      assert.equal((await metrics.leaseTakeovers.get()).values[0]?.value, 1)
      const { lost, renewed } = await a.renew('worker-a', new Map([[id!, mine!.epoch]]))
      assert.deepEqual(lost, [id])
      assert.deepEqual(renewed, [])
      await b.release('worker-b')
    })

    it('when the epoch is stale, then guard refuses the ingest transaction and nothing it wrote is kept', async () => {
      const [id] = await addServers(storage, 1)
      const a = manager(storage)
      await a.ensureRows()
      const [mine] = await a.claim('worker-a', 10)
      await manager(second, { now: ahead(2 * LEASE_MS) }).claim('worker-b', 10)
      await assert.rejects(
        storage.db.transaction().execute(async (trx) => {
          await trx
            .insertInto('mailbox_cursors')
            .values({ server_id: id!, folder: 'INBOX', uidvalidity: '1', last_uid: 99, highest_modseq: null, updated_at: Date.now() })
            .execute()
          await a.guard(trx, id!, 'worker-a', mine!.epoch)
        }),
        (err) => isAppError(err, 'lease_lost'),
      )
      const cursor = await storage.db.selectFrom('mailbox_cursors').selectAll().where('server_id', '=', id!).executeTakeFirst()
      assert.equal(cursor, undefined)
      // The new owner's guard passes.
      const held = await manager(second).held('worker-b')
      const epoch = held.find((h) => h.serverId === id)!.epoch
      await second.db.transaction().execute((trx) => manager(second).guard(trx, id!, 'worker-b', epoch))
      await manager(second).release('worker-b')
    })

    it('when a worker releases its leases, then another claims them at once', async () => {
      const ids = await addServers(storage, 2)
      const a = manager(storage)
      await a.ensureRows()
      const claimed = await a.claim('worker-a', 10)
      assert.ok(ids.every((id) => claimed.some((c) => c.serverId === id)))
      await a.release('worker-a', ids[0])
      const b = await manager(second).claim('worker-b', 10)
      assert.deepEqual(b.map((c) => c.serverId), [ids[0]])
      await a.release('worker-a')
      await manager(second).release('worker-b')
    })

    if (dialect === 'postgres') {
      it('when a takeover races with a commit, then it skips the locked lease until the commit is done', async () => {
        const [id] = await addServers(storage, 1)
        const a = manager(storage)
        await a.ensureRows()
        await a.release('worker-a')
        await a.release('worker-b')
        const [mine] = (await a.claim('worker-a', 100)).filter((c) => c.serverId === id)
        const thief = manager(second, { now: ahead(2 * LEASE_MS) })
        let duringCommit: Array<{ serverId: number }> = []
        await storage.db.transaction().execute(async (trx) => {
          await a.guard(trx, id!, 'worker-a', mine!.epoch)
          // The guard holds the row lock until commit: a concurrent claim skips this mailbox.
          duringCommit = (await thief.claim('worker-b', 100)).filter((c) => c.serverId === id)
        })
        assert.deepEqual(duringCommit, [])
        const afterCommit = (await thief.claim('worker-b', 100)).filter((c) => c.serverId === id)
        assert.equal(afterCommit.length, 1)
        assert.equal(afterCommit[0]!.epoch, mine!.epoch + 1)
        await thief.release('worker-b')
        await a.release('worker-a')
      })
    }
  })

  describe(`worker registry on ${dialect}`, () => {
    let storage: Storage
    let cleanup: () => Promise<void>
    before(async () => {
      const t = await openTestStorage(dialect)
      storage = t.storage
      cleanup = t.cleanup
    })
    after(async () => cleanup?.())

    it('when a worker stops heartbeating, then it stops counting as live and is cleaned up later', async () => {
      let now = 1_000_000
      const registry = new WorkerRegistry(storage.db, { staleMs: 30_000, now: () => now })
      await registry.register({ id: 'w1', concurrency: 10 })
      await registry.register({ id: 'w2', concurrency: 5 })
      assert.deepEqual((await registry.live()).map((w) => w.id), ['w1', 'w2'])
      now += 20_000
      assert.equal(await registry.heartbeat('w1'), true)
      now += 20_000
      assert.deepEqual((await registry.live()).map((w) => w.id), ['w1'])
      await registry.markStopping('w1')
      assert.deepEqual(await registry.live(), [])
      assert.equal(await registry.cleanup(30_000), 1)
      assert.equal(await registry.heartbeat('w2'), false, 'a cleaned-up worker learns it must register again')
      await registry.unregister('w1')
      assert.deepEqual(await registry.list(), [])
    })
  })
}
