import os from 'node:os'
import crypto from 'node:crypto'
import type { Db } from '../storage/database.ts'
import type { Selectable } from 'kysely'
import type { WorkersTable } from '../storage/schema.ts'

export type WorkerRow = Selectable<WorkersTable>

/** A stable id for one worker process: host, pid and a random part (pids are reused across restarts). */
export function newWorkerId(): string {
  return `${os.hostname()}:${process.pid}:${crypto.randomBytes(3).toString('hex')}`
}

/**
 * The `workers` table: one row per running worker process, refreshed by its heartbeat. Leases use
 * it to compute each worker's fair share (live workers and their concurrency); the Workers page
 * shows it. A row whose heartbeat stopped (a killed process) stops counting as live after
 * `staleMs`, and is deleted later by `cleanup`.
 */
export class WorkerRegistry {
  constructor(
    private readonly db: Db,
    private readonly opts: { staleMs: number; now?: () => number },
  ) {}

  private now(): number {
    return (this.opts.now ?? Date.now)()
  }

  async register(w: { id: string; concurrency: number; host?: string; pid?: number }): Promise<void> {
    const now = this.now()
    await this.db
      .insertInto('workers')
      .values({ id: w.id, host: w.host ?? os.hostname(), pid: w.pid ?? process.pid, started_at: now, heartbeat_at: now, concurrency: w.concurrency, stopping: 0 })
      .onConflict((oc) => oc.column('id').doUpdateSet({ heartbeat_at: now, concurrency: w.concurrency, stopping: 0 }))
      .execute()
  }

  /** Refreshes the heartbeat; false when the row is gone (cleaned up as dead while this process was paused). */
  async heartbeat(id: string): Promise<boolean> {
    const r = await this.db.updateTable('workers').set({ heartbeat_at: this.now() }).where('id', '=', id).executeTakeFirst()
    return Number(r.numUpdatedRows) === 1
  }

  /** A stopping worker no longer counts for fair shares, so the others claim its mailboxes at once. */
  async markStopping(id: string): Promise<void> {
    await this.db.updateTable('workers').set({ stopping: 1 }).where('id', '=', id).execute()
  }

  async unregister(id: string): Promise<void> {
    await this.db.deleteFrom('workers').where('id', '=', id).execute()
  }

  /** Workers whose heartbeat is recent and that are not shutting down. */
  async live(): Promise<WorkerRow[]> {
    return this.db
      .selectFrom('workers')
      .selectAll()
      .where('heartbeat_at', '>', this.now() - this.opts.staleMs)
      .where('stopping', '=', 0)
      .orderBy('id')
      .execute()
  }

  async list(): Promise<WorkerRow[]> {
    return this.db.selectFrom('workers').selectAll().orderBy('started_at').orderBy('id').execute()
  }

  /** Deletes rows of workers silent for longer than `olderThanMs` (killed processes). */
  async cleanup(olderThanMs: number): Promise<number> {
    const r = await this.db.deleteFrom('workers').where('heartbeat_at', '<', this.now() - olderThanMs).executeTakeFirst()
    return Number(r.numDeletedRows)
  }
}

/**
 * The most mailboxes one worker should hold so that the live workers together hold them all,
 * evenly, without anyone exceeding its own concurrency: the smallest level L with
 * sum(min(concurrency_i, L)) >= total ("water filling"). With equal concurrencies that is
 * ceil(total / workers). A worker absent from `concurrencies` (its row not written yet) counts too.
 */
export function fairShare(total: number, concurrencies: number[], mine: number): number {
  const caps = concurrencies.length ? concurrencies : [mine]
  if (total <= 0) return 0
  const capacity = caps.reduce((a, c) => a + c, 0)
  if (capacity <= total) return mine
  let lo = 0
  let hi = Math.max(...caps)
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2)
    const held = caps.reduce((a, c) => a + Math.min(c, mid), 0)
    if (held >= total) hi = mid
    else lo = mid + 1
  }
  return Math.min(mine, lo)
}
