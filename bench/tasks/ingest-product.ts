/**
 * Figure 1, the product: a connected mailbox holding the whole corpus, drained into requests by
 * the real worker (supervisor → IMAP sync → ingest pipeline) on a fresh database. The clock runs
 * from `startWorkers` (lease claim, connect, sign-in included) to the commit of the last message.
 */
import { CpuMeter, RssSampler, nowMs, peakRssMb } from '../lib/memory.ts'
import type { MemoryBreakdown } from '../lib/memory.ts'
import { startProduct } from '../lib/product.ts'
import type { Dialect, IssuedTokens } from '../lib/product.ts'
import type { WorldInfo } from '../lib/world-info.ts'

export interface IngestProductArgs {
  world: WorldInfo
  dialect: Dialect
  email: string
  tokens: IssuedTokens
  expected: number
  timeoutMs: number
}

export interface IngestProductResult {
  dialect: Dialect
  messages: number
  ms: number
  rate: number
  /** From startWorkers to the first commit: claim, connect, sign in, SELECT, list, first fetch, first batch. */
  firstCommitMs: number
  /** Rate between the first and the last commit (steady state). */
  steadyRate: number
  peakRssMb: number
  rssSampledMaxMb: number
  /** The main thread's heap and Buffers at the highest RSS sample (the rest: worker threads, native). */
  atPeak: MemoryBreakdown
  startRssMb: number
  cpu: { cpuMs: number; wallMs: number; percentOfOneCore: number }
  /** Event-loop utilization of the main thread over the run (1 = never idle: it is the bottleneck). */
  mainThreadBusy: number
  outcomes: Record<string, number>
  requests: number
  inboundRows: number
  batches: { count: number; meanSize: number }
  stages: Record<string, { calls: number; ms: number }>
  uninstrumented: string[]
}

export async function run(args: IngestProductArgs): Promise<IngestProductResult> {
  const product = await startProduct({ dialect: args.dialect })
  try {
    const server = await product.addImapMailbox(args.world, { email: args.email, tokens: args.tokens })
    const startRssMb = process.memoryUsage.rss() / 1024 / 1024
    const rss = new RssSampler(20).start()
    const cpu = new CpuMeter()
    const elu = performance.eventLoopUtilization()
    const t0 = nowMs()
    await product.startWorkers()
    await product.inst.waitForCommits(args.expected, args.timeoutMs)
    const t1 = nowMs()
    const cpuUsed = cpu.read()
    const mainThreadBusy = performance.eventLoopUtilization(elu).utilization
    const rssStats = rss.stop()
    const peak = Math.max(peakRssMb(), rssStats.maxMb)
    await product.stopWorkers()

    const commits = product.inst.commits
    const firstAt = Math.min(...commits.map((c) => c.at))
    const firstBatch = product.inst.batchSizes[0] ?? 0
    const outcomes: Record<string, number> = {}
    for (const c of commits) outcomes[c.outcome] = (outcomes[c.outcome] ?? 0) + 1
    const db = product.services.storage.db
    const inbound = await db.selectFrom('inbound_mail').select((eb) => eb.fn.countAll<number>().as('n')).where('server_id', '=', server.id).executeTakeFirstOrThrow()
    const requests = await db.selectFrom('requests').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
    const ms = t1 - t0
    return {
      dialect: args.dialect,
      messages: commits.length,
      ms,
      rate: (commits.length / ms) * 1000,
      firstCommitMs: firstAt - t0,
      steadyRate: ((commits.length - firstBatch) / Math.max(1, t1 - firstAt)) * 1000,
      peakRssMb: peak,
      rssSampledMaxMb: rssStats.maxMb,
      atPeak: rssStats.atMax,
      startRssMb,
      cpu: cpuUsed,
      mainThreadBusy,
      outcomes,
      requests: Number(requests.n),
      inboundRows: Number(inbound.n),
      batches: { count: product.inst.batchSizes.length, meanSize: commits.length / Math.max(1, product.inst.batchSizes.length) },
      stages: product.inst.stageReport(),
      uninstrumented: product.uninstrumented,
    }
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- product log (tail) ---\n${product.logTail()}`)
  } finally {
    await product.stop()
  }
}
