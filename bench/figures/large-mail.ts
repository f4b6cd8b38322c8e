/**
 * Figure 4: one large message (40 MB; quick: 10 MB) delivered to a mailbox the worker IDLEs on:
 * the worker's RSS growth while it fetches, parses and stores it. Baseline in the same run: a
 * plain imapflow client downloading the same message into memory.
 */
import { largeMessage, messageIdOf, smallMessage } from '../corpus.ts'
import type { RunContext } from '../lib/context.ts'
import { nowMs } from '../lib/memory.ts'
import { figure } from '../lib/report.ts'
import type { Figure } from '../lib/report.ts'
import { round } from '../lib/stats.ts'
import type { LargeBaselineResult } from '../tasks/large-baseline.ts'
import type { LargeProductResult } from '../tasks/large-product.ts'

export async function largeMailFigures(ctx: RunContext): Promise<Figure[]> {
  const bytes = (ctx.quick ? 10 : 40) * 1024 * 1024
  const user = 'large@bench.example.test'
  // One small message first: the worker reaches its steady state (parser pool started) before
  // the measurement, as a worker that has been running does.
  await ctx.world.dovecot.bulkLoad(user, [smallMessage(0, 'large-warmup')])
  const raw = largeMessage(bytes)
  const timeoutMs = 120_000
  const child = ctx.child<LargeProductResult>(
    'large-product',
    { world: ctx.world.info, email: user, tokens: await ctx.world.issueTokens(user), timeoutMs },
    { timeoutMs: timeoutMs + 60_000 },
  )
  await child.waitEvent('ready', 60_000)
  ctx.log(`large: delivering one ${(raw.length / 1024 / 1024).toFixed(1)} MiB message`)
  await ctx.world.dovecot.deliver(user, raw)
  const deliveredAt = nowMs()
  const p = await child.result

  ctx.log('large: baseline, imapflow download of the same message')
  const b = await ctx.child<LargeBaselineResult>(
    'large-baseline',
    { world: ctx.world.info, email: user, accessToken: (await ctx.world.issueTokens(user)).access_token },
    { timeoutMs: 60_000 },
  ).result
  if (b.bytes !== raw.length) throw new Error(`the baseline downloaded ${b.bytes} bytes, expected ${raw.length}`)

  const mib = round(raw.length / 1024 / 1024, 1)
  return [
    figure(ctx.env, {
      id: 'large.rss-growth',
      name: `Large mail (${mib} MiB), RSS growth`,
      value: round(p.growthMb, 0),
      unit: 'MB',
      better: 'lower',
      baseline: { name: 'imapflow download of it', value: round(b.growthMb, 0), unit: 'MB' },
      target: { op: '<', value: 150, unit: 'MB', text: '< 150 MB' },
      details: {
        messageId: messageIdOf(raw),
        rawBytes: raw.length,
        outcome: p.outcome,
        storedRawBytes: p.rawBytes,
        attachments: p.attachments,
        attachmentBytes: p.attachmentBytes,
        rssBeforeMb: round(p.beforeMb, 0),
        rssPeakMb: round(p.peakMb, 0),
        rssAfterMb: round(p.afterMb, 0),
        mainThreadAtPeak: p.atPeak,
        deliveryToCommitMs: round(p.commitAt - deliveredAt, 0),
        baselineRssBeforeMb: round(b.beforeMb, 0),
        baselineRssPeakMb: round(b.peakMb, 0),
      },
    }),
  ]
}
