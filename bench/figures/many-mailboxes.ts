/**
 * Figure 5: one worker process holding 500 mailboxes in IDLE (quick: 50): its RSS and CPU over a
 * quiet window of about 10 s. Baseline in the same run: the same mailboxes held by plain imapflow
 * IDLE connections in one process (what the connections alone cost).
 */
import { smallMessage } from '../corpus.ts'
import type { RunContext } from '../lib/context.ts'
import type { ManyMeasurement } from '../lib/memory.ts'
import { figure } from '../lib/report.ts'
import type { Figure } from '../lib/report.ts'
import { round } from '../lib/stats.ts'
import type { ManyProductResult } from '../tasks/many-product.ts'

export async function manyMailboxesFigures(ctx: RunContext): Promise<Figure[]> {
  const count = ctx.quick ? 50 : 500
  const windowMs = ctx.quick ? 5_000 : 10_000
  const emails = Array.from({ length: count }, (_, i) => `many-${String(i).padStart(4, '0')}@bench.example.test`)
  ctx.log(`many: ${count} mailboxes with one message each`)
  for (const [i, email] of emails.entries()) await ctx.world.dovecot.bulkLoad(email, [smallMessage(i, 'many')])
  const timeoutMs = 60_000 + count * 200

  ctx.log(`many: deskmail worker holding ${count} mailboxes`)
  const mailboxes = []
  for (const email of emails) mailboxes.push({ email, tokens: await ctx.world.issueTokens(email) })
  const p = await ctx.child<ManyProductResult>('many-product', { world: ctx.world.info, mailboxes, windowMs, timeoutMs }, { timeoutMs: timeoutMs + windowMs + 60_000 })
    .result

  ctx.log(`many: baseline, ${count} plain imapflow IDLE connections`)
  const b = await ctx.child<ManyMeasurement>(
    'many-baseline',
    { world: ctx.world.info, mailboxes: mailboxes.map((m) => ({ email: m.email, accessToken: m.tokens.access_token })), windowMs },
    { timeoutMs: timeoutMs + windowMs + 60_000 },
  ).result

  return [
    figure(ctx.env, {
      id: 'many.rss',
      name: `${count} IDLE mailboxes, worker RSS`,
      value: round(p.rssMaxMb, 0),
      unit: 'MB',
      better: 'lower',
      baseline: { name: `${count} plain imapflow IDLE connections`, value: round(b.rssMaxMb, 0), unit: 'MB' },
      target: { op: '<', value: 500, unit: 'MB', text: '< 500 MB' },
      details: {
        mailboxes: count,
        windowSeconds: round(p.windowMs / 1000, 1),
        rssMeanMb: round(p.rssMeanMb, 0),
        heapUsedMb: round(p.heapUsedMb, 0),
        heldLeases: p.heldLeases,
        secondsToAllSynced: round(p.msToAllSynced / 1000, 1),
        baselineRssMeanMb: round(b.rssMeanMb, 0),
      },
    }),
    figure(ctx.env, {
      id: 'many.cpu',
      name: `${count} IDLE mailboxes, worker CPU while idle`,
      value: round(p.cpuPercentOfOneCore, 2),
      unit: '% of a core',
      better: 'lower',
      baseline: { name: `${count} plain imapflow IDLE connections`, value: round(b.cpuPercentOfOneCore, 2), unit: '% of a core' },
      target: null,
      details: { cpuMs: round(p.cpuMs, 0), baselineCpuMs: round(b.cpuMs, 0), windowSeconds: round(p.windowMs / 1000, 1) },
    }),
  ]
}
