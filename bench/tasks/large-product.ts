/**
 * Figure 4, the product: the worker ingests one small message (so that it is in its steady state:
 * parser pool started, statements prepared) and IDLEs; once its memory has settled the
 * orchestrator delivers one large message, and this child samples RSS every 10 ms until the
 * message is committed (and a little after). Growth = peak − settled RSS before the delivery.
 */
import { emitToParent } from '../lib/ipc.ts'
import { RssSampler, nowMs, peakRssMb, sleep } from '../lib/memory.ts'
import type { MemoryBreakdown } from '../lib/memory.ts'
import { startProduct } from '../lib/product.ts'
import type { IssuedTokens } from '../lib/product.ts'
import type { WorldInfo } from '../lib/world-info.ts'

export interface LargeProductArgs {
  world: WorldInfo
  email: string
  tokens: IssuedTokens
  timeoutMs: number
}

export interface LargeProductResult {
  beforeMb: number
  peakMb: number
  growthMb: number
  afterMb: number
  atPeak: MemoryBreakdown
  /** Delivery (reported by the parent) to commit. */
  commitAt: number
  outcome: string
  attachments: number
  attachmentBytes: number
  rawBytes: number
}

export async function run(args: LargeProductArgs): Promise<LargeProductResult> {
  const product = await startProduct({ dialect: 'sqlite' })
  try {
    const server = await product.addImapMailbox(args.world, { email: args.email, tokens: args.tokens })
    await product.startWorkers()
    await product.waitSynced([server.id], 30_000)
    await product.inst.waitForCommits(1, 30_000)
    // Let startup garbage settle, then take the level before the delivery over one second.
    await sleep(1_500)
    const settle = new RssSampler(50).start()
    await sleep(1_000)
    const before = settle.stop()
    const maxBefore = peakRssMb()
    const sampler = new RssSampler(10).start()
    emitToParent('ready')
    await product.inst.waitForCommits(2, args.timeoutMs)
    const commitAt = nowMs()
    await sleep(1_000)
    const during = sampler.stop()
    const maxAfter = peakRssMb()
    // The kernel's high-water mark catches a peak between two samples, if it is a new one.
    const peak = maxAfter > maxBefore ? Math.max(maxAfter, during.maxMb) : during.maxMb
    const db = product.services.storage.db
    const att = await db
      .selectFrom('attachments')
      .select([(eb) => eb.fn.countAll<number>().as('n'), (eb) => eb.fn.sum<number>('size').as('bytes')])
      .executeTakeFirstOrThrow()
    const raw = await db.selectFrom('raw_mail').select((eb) => eb.fn.sum<number>('size').as('bytes')).executeTakeFirstOrThrow()
    return {
      beforeMb: before.meanMb,
      peakMb: peak,
      growthMb: peak - before.meanMb,
      afterMb: during.lastMb,
      commitAt,
      outcome: product.inst.commits[1]!.outcome,
      atPeak: during.atMax,
      attachments: Number(att.n),
      attachmentBytes: Number(att.bytes ?? 0),
      rawBytes: Number(raw.bytes ?? 0),
    }
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- product log (tail) ---\n${product.logTail()}`)
  } finally {
    await product.stop()
  }
}
