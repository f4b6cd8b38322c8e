import type { Transaction } from 'kysely'
import type { Db } from '../storage/database.ts'
import type { StorageCapabilities } from '../storage/dialect.ts'
import type { Database } from '../storage/schema.ts'
import type { Metrics } from '../shared/metrics.ts'
import type { Logger } from '../shared/logger.ts'
import { AppError } from '../shared/errors.ts'

/** A mailbox lease this worker holds: the epoch is what its ingest transactions are guarded with. */
export interface HeldLease {
  serverId: number
  epoch: number
  expiresAt: number
}

/** One row of `mailbox_leases` with the server's name, for the Workers page. */
export interface LeaseInfo {
  serverId: number
  serverName: string
  emailAddress: string
  protocol: string
  enabled: boolean
  owner: string | null
  epoch: number
  expiresAt: number
  acquiredAt: number | null
}

/**
 * Mailbox leases (DESIGN.md, Architecture): every mailbox is synced by exactly one worker at a
 * time. A lease is a row (server_id, owner, epoch, expires_at) that a worker claims when it is
 * unowned or expired, renews by heartbeat, and releases on shutdown or rebalance.
 *
 * Exactly-once rests on the epoch, not on the clock: every claim increments it, and every ingest
 * transaction checks (`guard`) that the lease still has this worker as owner with the epoch the
 * session started with, under a row lock on PostgreSQL. A worker paused past its lease (GC, SIGSTOP,
 * a VM freeze) may still be holding an IMAP connection when it wakes, but its commit fails, because
 * whoever took the mailbox over bumped the epoch, and a takeover that races with the commit waits
 * for the row lock (or skips the row) instead of interleaving.
 */
export class LeaseManager {
  constructor(
    private readonly db: Db,
    private readonly caps: StorageCapabilities,
    private readonly opts: { leaseMs: number; metrics?: Metrics; logger?: Logger; now?: () => number },
  ) {}

  private now(): number {
    return (this.opts.now ?? Date.now)()
  }

  get leaseMs(): number {
    return this.opts.leaseMs
  }

  /**
   * Creates the lease rows of incoming servers that have none (new servers), and drops rows of
   * servers that no longer exist. Safe to run from every worker at once (ON CONFLICT DO NOTHING).
   */
  async ensureRows(): Promise<number> {
    const missing = await this.db
      .selectFrom('email_servers')
      .select('email_servers.id')
      .where('direction', '=', 'incoming')
      .where((eb) => eb.not(eb.exists(eb.selectFrom('mailbox_leases').select('server_id').whereRef('mailbox_leases.server_id', '=', 'email_servers.id'))))
      .execute()
    if (missing.length) {
      await this.db
        .insertInto('mailbox_leases')
        .values(missing.map((m) => ({ server_id: m.id, owner: null, epoch: 0, expires_at: 0, acquired_at: null })))
        .onConflict((oc) => oc.column('server_id').doNothing())
        .execute()
    }
    await this.db
      .deleteFrom('mailbox_leases')
      .where((eb) => eb.not(eb.exists(eb.selectFrom('email_servers').select('id').whereRef('email_servers.id', '=', 'mailbox_leases.server_id'))))
      .execute()
    return missing.length
  }

  /** How many mailboxes the workers share: enabled incoming servers. */
  async enabledCount(): Promise<number> {
    const r = await this.db
      .selectFrom('email_servers')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('direction', '=', 'incoming')
      .where('enabled', '=', 1)
      .executeTakeFirstOrThrow()
    return Number(r.n)
  }

  /**
   * Takes up to `limit` unowned or expired leases of enabled incoming servers, bumping each one's
   * epoch. On PostgreSQL the candidates are locked with `FOR UPDATE SKIP LOCKED`, so workers
   * claiming at the same moment take different mailboxes and never wait for each other; on SQLite
   * (one process) the conditional UPDATE alone decides.
   */
  async claim(workerId: string, limit: number): Promise<HeldLease[]> {
    if (limit <= 0) return []
    const now = this.now()
    const claimed = await this.db.transaction().execute(async (trx) => {
      let q = trx
        .selectFrom('mailbox_leases as l')
        .innerJoin('email_servers as s', 's.id', 'l.server_id')
        .select(['l.server_id', 'l.owner', 'l.epoch'])
        .where('s.direction', '=', 'incoming')
        .where('s.enabled', '=', 1)
        .where((eb) => eb.or([eb('l.owner', 'is', null), eb('l.expires_at', '<=', now)]))
        .orderBy('l.expires_at')
        .orderBy('l.server_id')
        .limit(limit)
      if (this.caps.skipLocked) q = q.forUpdate('l').skipLocked()
      const candidates = await q.execute()
      const out: Array<HeldLease & { previousOwner: string | null }> = []
      for (const c of candidates) {
        const updated = await trx
          .updateTable('mailbox_leases')
          .set({ owner: workerId, epoch: c.epoch + 1, expires_at: now + this.opts.leaseMs, acquired_at: now })
          .where('server_id', '=', c.server_id)
          .where('epoch', '=', c.epoch)
          .where((eb) => eb.or([eb('owner', 'is', null), eb('expires_at', '<=', now)]))
          .executeTakeFirst()
        if (Number(updated.numUpdatedRows) === 1) {
          out.push({ serverId: c.server_id, epoch: c.epoch + 1, expiresAt: now + this.opts.leaseMs, previousOwner: c.owner })
        }
      }
      return out
    })
    for (const c of claimed) {
      if (c.previousOwner && c.previousOwner !== workerId) {
        this.opts.metrics?.leaseTakeovers.inc()
        this.opts.logger?.info({ serverId: c.serverId, previousOwner: c.previousOwner, epoch: c.epoch }, 'mailbox lease taken over after expiry')
      }
    }
    return claimed.map(({ serverId, epoch, expiresAt }) => ({ serverId, epoch, expiresAt }))
  }

  /**
   * The heartbeat: extends every lease this worker still owns. `held` maps the server ids the
   * caller believes it holds to their epochs; `lost` lists those now owned by someone else or with
   * another epoch (taken over while this process was paused), `renewed` what the database says
   * this worker holds.
   */
  async renew(workerId: string, held: ReadonlyMap<number, number> = new Map()): Promise<{ renewed: HeldLease[]; lost: number[] }> {
    const expiresAt = this.now() + this.opts.leaseMs
    const rows = await this.db
      .updateTable('mailbox_leases')
      .set({ expires_at: expiresAt })
      .where('owner', '=', workerId)
      .returning(['server_id', 'epoch'])
      .execute()
    const renewed = rows.map((r) => ({ serverId: r.server_id, epoch: Number(r.epoch), expiresAt }))
    const byId = new Map(renewed.map((r) => [r.serverId, r.epoch]))
    const lost = [...held].filter(([id, epoch]) => byId.get(id) !== epoch).map(([id]) => id)
    return { renewed, lost }
  }

  /** Hands leases back (all of this worker's, or one), immediately claimable by others. */
  async release(workerId: string, serverId?: number): Promise<void> {
    let q = this.db.updateTable('mailbox_leases').set({ owner: null, expires_at: 0 }).where('owner', '=', workerId)
    if (serverId !== undefined) q = q.where('server_id', '=', serverId)
    await q.execute()
  }

  /**
   * Runs inside an ingest transaction, just before commit: throws `lease_lost` unless the lease is
   * still this worker's with this epoch. On PostgreSQL the row is locked (`FOR UPDATE`) until the
   * commit, so a concurrent takeover either committed before (and we see its epoch) or waits.
   */
  async guard(trx: Transaction<Database>, serverId: number, workerId: string, epoch: number): Promise<void> {
    let q = trx.selectFrom('mailbox_leases').select(['owner', 'epoch']).where('server_id', '=', serverId)
    if (this.caps.skipLocked) q = q.forUpdate()
    const row = await q.executeTakeFirst()
    if (!row || row.owner !== workerId || Number(row.epoch) !== epoch) {
      throw new AppError('lease_lost', `the lease of mailbox ${serverId} is no longer held by this worker (epoch ${epoch}); the batch is rolled back`, {
        details: { serverId, epoch, owner: row?.owner ?? undefined, currentEpoch: row?.epoch },
      })
    }
  }

  async held(workerId: string): Promise<HeldLease[]> {
    const rows = await this.db.selectFrom('mailbox_leases').select(['server_id', 'epoch', 'expires_at']).where('owner', '=', workerId).execute()
    return rows.map((r) => ({ serverId: r.server_id, epoch: Number(r.epoch), expiresAt: r.expires_at }))
  }

  /** Every incoming server with its lease, for the Workers page. */
  async list(): Promise<LeaseInfo[]> {
    const rows = await this.db
      .selectFrom('email_servers as s')
      .leftJoin('mailbox_leases as l', 'l.server_id', 's.id')
      .select(['s.id', 's.name', 's.email_address', 's.protocol', 's.enabled', 'l.owner', 'l.epoch', 'l.expires_at', 'l.acquired_at'])
      .where('s.direction', '=', 'incoming')
      .orderBy('s.id')
      .execute()
    return rows.map((r) => ({
      serverId: r.id,
      serverName: r.name,
      emailAddress: r.email_address,
      protocol: r.protocol,
      enabled: Boolean(r.enabled),
      owner: r.owner ?? null,
      epoch: Number(r.epoch ?? 0),
      expiresAt: r.expires_at ?? 0,
      acquiredAt: r.acquired_at ?? null,
    }))
  }
}
