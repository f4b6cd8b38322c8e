/**
 * Figure 2: push latency, from the moment a message lands in the maildir (the MDA's rename into
 * new/) to the commit of its request, while the supervisor IDLEs on the mailbox. Baseline, in the
 * same run and for the same deliveries: a plain imapflow connection IDLEing on the same mailbox
 * in this process, timed to its `exists` event (what any IMAP client could learn at best; Dovecot
 * itself waits 0.5 s before it notifies IDLE clients, HARNESS.md).
 */
import fs from 'node:fs'
import { ImapFlow } from 'imapflow'
import { corpusMessage, DEFAULT_SEED, messageIdOf, prng, smallMessage } from '../corpus.ts'
import type { RunContext } from '../lib/context.ts'
import { nowMs, sleep, waitFor } from '../lib/memory.ts'
import { figure } from '../lib/report.ts'
import type { Figure, Target } from '../lib/report.ts'
import { percentile, round, summary } from '../lib/stats.ts'
import type { PushProductResult } from '../tasks/push-product.ts'

const targets: Record<string, Target | null> = {
  p50: { op: '<', value: 1000, unit: 'ms', text: '< 1,000 ms' },
  p95: null,
  p99: { op: '<', value: 2000, unit: 'ms', text: '< 2,000 ms' },
}

export async function pushFigures(ctx: RunContext): Promise<Figure[]> {
  const count = ctx.quick ? 30 : 200
  const user = 'push@bench.example.test'
  // Ingested by the worker's first sync, before the clock starts: the parser pool starts on the
  // first message (about a second), which a worker that has been running has behind it.
  await ctx.world.dovecot.bulkLoad(user, [smallMessage(0, 'push-warmup')])

  const existsEvents: Array<{ count: number; at: number }> = []
  const watcher = new ImapFlow({
    host: ctx.world.info.imap.host,
    port: ctx.world.info.imap.tlsPort,
    secure: true,
    tls: { ca: fs.readFileSync(ctx.world.info.caCertPath) },
    auth: { user, accessToken: (await ctx.world.issueTokens(user)).access_token },
    logger: false,
  })
  watcher.on('error', () => {})
  watcher.on('exists', (e: { count: number }) => existsEvents.push({ count: e.count, at: nowMs() }))
  await watcher.connect()
  try {
    const box = await watcher.mailboxOpen('INBOX')
    const startCount = box.exists
    void watcher.idle().catch(() => {})

    const timeoutMs = (count * 400 + 60_000) * 1
    const child = ctx.child<PushProductResult>(
      'push-product',
      { world: ctx.world.info, dialect: 'sqlite', email: user, tokens: await ctx.world.issueTokens(user), warmup: 1, expected: count, timeoutMs },
      { timeoutMs: timeoutMs + 30_000 },
    )
    await child.waitEvent('ready', 60_000)

    ctx.log(`push: delivering ${count} messages at random 50-400 ms intervals`)
    const next = prng(DEFAULT_SEED + 2)
    const delivered: Array<{ messageId: string; at: number }> = []
    for (let i = 0; i < count; i++) {
      await sleep(50 + Math.floor(next() * 350))
      const raw = corpusMessage(100_000 + i)
      await ctx.world.dovecot.deliver(user, raw)
      delivered.push({ messageId: messageIdOf(raw)!, at: nowMs() })
    }
    const result = await child.result
    // The watcher may be notified after the worker committed: give its last EXISTS a moment.
    await waitFor('the last EXISTS on the watcher', () => (existsEvents.at(-1)?.count ?? 0) >= startCount + count, 5_000).catch(() => {})

    const committedAt = new Map(result.commits.map((c) => [c.messageId, c.at]))
    const product: number[] = []
    const baseline: number[] = []
    // Per message: how long after a bare client could know of it was it committed.
    const afterExists: number[] = []
    delivered.forEach((d, i) => {
      const at = committedAt.get(d.messageId)
      if (at === undefined) throw new Error(`message ${d.messageId} was never committed`)
      product.push(at - d.at)
      // The first EXISTS that counts this message (one notification may cover several).
      const seen = existsEvents.find((e) => e.count >= startCount + i + 1)
      if (seen) {
        baseline.push(seen.at - d.at)
        afterExists.push(at - seen.at)
      }
    })
    const details = {
      messages: count,
      product: mapValues(summary(product)),
      imapflowExists: mapValues(summary(baseline)),
      commitAfterExists: mapValues(summary(afterExists)),
      existsMissed: count - baseline.length,
      batches: result.batches,
      dialect: 'sqlite',
    }
    return (['p50', 'p95', 'p99'] as const).map((p) => {
      const q = Number(p.slice(1))
      return figure(ctx.env, {
        id: `push.${p}`,
        name: `Push latency ${p} (${count} msgs)`,
        value: round(percentile(product, q), 0),
        unit: 'ms',
        better: 'lower',
        baseline: { name: `imapflow 'exists' ${p}`, value: round(percentile(baseline, q), 0), unit: 'ms' },
        target: targets[p]!,
        details: p === 'p50' ? details : {},
      })
    })
  } finally {
    await watcher.logout().catch(() => watcher.close())
  }
}

function mapValues(o: Record<string, number | undefined>): Record<string, number | null> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, round(v, 1)]))
}
