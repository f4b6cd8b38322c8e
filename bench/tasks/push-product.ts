/**
 * Figure 2, the product: the worker ingests what is in the mailbox (a warm-up message: parser
 * pool started, as in a worker that has been running) and holds it in IDLE; the orchestrator
 * delivers mail into it one message at a time and this child timestamps each message's commit
 * (`ingestBatch` resolved, i.e. after COMMIT).
 */
import { emitToParent } from '../lib/ipc.ts'
import { sleep } from '../lib/memory.ts'
import { startProduct } from '../lib/product.ts'
import type { Dialect, IssuedTokens } from '../lib/product.ts'
import type { WorldInfo } from '../lib/world-info.ts'

export interface PushProductArgs {
  world: WorldInfo
  dialect: Dialect
  email: string
  tokens: IssuedTokens
  /** Messages in the mailbox before the worker starts (ingested by its first sync, not timed). */
  warmup: number
  expected: number
  timeoutMs: number
}

export interface PushProductResult {
  commits: Array<{ messageId: string | undefined; at: number; outcome: string }>
  batches: number
}

export async function run(args: PushProductArgs): Promise<PushProductResult> {
  const product = await startProduct({ dialect: args.dialect })
  try {
    const server = await product.addImapMailbox(args.world, { email: args.email, tokens: args.tokens })
    await product.startWorkers()
    await product.waitSynced([server.id], 30_000)
    await product.inst.waitForCommits(args.warmup, 30_000)
    // The sync is over; imapflow enters IDLE after its auto-IDLE delay (100 ms in the sync).
    await sleep(500)
    emitToParent('ready')
    await product.inst.waitForCommits(args.warmup + args.expected, args.timeoutMs)
    const commits = product.inst.commits.map((c) => ({ messageId: c.messageId, at: c.at, outcome: c.outcome }))
    return { commits, batches: product.inst.batchSizes.length }
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- product log (tail) ---\n${product.logTail()}`)
  } finally {
    await product.stop()
  }
}

