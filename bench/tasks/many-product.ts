/**
 * Figure 5, the product: one worker holding N mailboxes (one message each), all synced and in
 * IDLE; then RSS and CPU over a quiet window (heartbeats, lease renewals and IDLE included).
 */
import { measureWindow, nowMs, sleep } from '../lib/memory.ts'
import type { ManyMeasurement } from '../lib/memory.ts'
import { startProduct } from '../lib/product.ts'
import type { IssuedTokens } from '../lib/product.ts'
import type { WorldInfo } from '../lib/world-info.ts'

export interface ManyProductArgs {
  world: WorldInfo
  mailboxes: Array<{ email: string; tokens: IssuedTokens }>
  windowMs: number
  timeoutMs: number
}

export interface ManyProductResult extends ManyMeasurement {
  /** startWorkers → every mailbox synced once. */
  msToAllSynced: number
  heldLeases: number
  heapUsedMb: number
}

export async function run(args: ManyProductArgs): Promise<ManyProductResult> {
  const product = await startProduct({ dialect: 'sqlite' })
  try {
    const ids: number[] = []
    for (const m of args.mailboxes) ids.push((await product.addImapMailbox(args.world, { email: m.email, tokens: m.tokens })).id)
    const t0 = nowMs()
    await product.startWorkers()
    await product.inst.waitForCommits(args.mailboxes.length, args.timeoutMs)
    await product.waitSynced(ids, args.timeoutMs)
    const msToAllSynced = nowMs() - t0
    // IDLE starts 100 ms after each sync; let the burst's garbage go.
    await sleep(2_000)
    const m = await measureWindow(args.windowMs, args.mailboxes.length)
    const held = await product.services.storage.db
      .selectFrom('mailbox_leases')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('owner', 'is not', null)
      .executeTakeFirstOrThrow()
    return { ...m, msToAllSynced, heldLeases: Number(held.n), heapUsedMb: process.memoryUsage().heapUsed / 1024 / 1024 }
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- product log (tail) ---\n${product.logTail()}`)
  } finally {
    await product.stop()
  }
}
