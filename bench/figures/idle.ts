/**
 * Figure 3: idle cost. A sync of a big mailbox with nothing new must cost O(1) round trips: the
 * same IMAP commands (and about the same bytes) for 50,000 messages as for 5,000 (quick: 5,000
 * and 500). Each mailbox is first ingested whole by the worker (phase 1), then a new session
 * syncs it with nothing new (phase 2), counted by a proxy between the worker and Dovecot.
 */
import { smallMessage } from '../corpus.ts'
import type { RunContext } from '../lib/context.ts'
import { figure } from '../lib/report.ts'
import type { Figure } from '../lib/report.ts'
import { round } from '../lib/stats.ts'
import type { IdleProductResult } from '../tasks/idle-product.ts'

export async function idleFigures(ctx: RunContext): Promise<Figure[]> {
  const [small, large] = ctx.quick ? [500, 5_000] : [5_000, 50_000]
  const results: Record<number, IdleProductResult> = {}
  for (const size of [small, large]) {
    const user = `idle-${size}@bench.example.test`
    const raws = Array.from({ length: size }, (_, i) => smallMessage(i, `idle${size}`))
    ctx.log(`idle: ${size} messages written into the maildir`)
    await ctx.world.dovecot.bulkLoad(user, raws)
    const timeoutMs = Math.max(60_000, size * 5) // 200 msg/s at the very least
    ctx.log(`idle: deskmail ingests ${size} messages, then syncs again with nothing new`)
    results[size] = await ctx.child<IdleProductResult>(
      'idle-product',
      { world: ctx.world.info, email: user, tokens: await ctx.world.issueTokens(user), expected: size, timeoutMs },
      { timeoutMs: timeoutMs + 90_000 },
    ).result
  }
  const s = results[small]!
  const l = results[large]!
  const details = {
    [`${small}`]: describe(s),
    [`${large}`]: describe(l),
  }
  return [
    figure(ctx.env, {
      id: 'idle.commands',
      name: `Idle sync, IMAP commands (${large.toLocaleString('en-US')} msgs)`,
      value: l.commands,
      unit: 'commands',
      better: 'equal',
      baseline: { name: `same sync, ${small.toLocaleString('en-US')} msgs`, value: s.commands, unit: 'commands' },
      target: { op: '==', value: s.commands, unit: 'commands', text: `= count at ${small.toLocaleString('en-US')} (O(1))` },
      details,
    }),
    figure(ctx.env, {
      id: 'idle.bytes',
      name: `Idle sync, bytes from server (${large.toLocaleString('en-US')} msgs)`,
      value: l.bytesFromServer,
      unit: 'bytes',
      better: 'equal',
      baseline: { name: `same sync, ${small.toLocaleString('en-US')} msgs`, value: s.bytesFromServer, unit: 'bytes' },
      target: null,
    }),
    figure(ctx.env, {
      id: 'idle.time',
      name: `Idle sync, connect to IDLE (${large.toLocaleString('en-US')} msgs)`,
      value: round(l.msToIdle, 0),
      unit: 'ms',
      better: 'equal',
      baseline: { name: `same sync, ${small.toLocaleString('en-US')} msgs`, value: round(s.msToIdle, 0), unit: 'ms' },
      target: null,
    }),
  ]
}

function describe(r: IdleProductResult) {
  return {
    commands: r.commandNames.join(', '),
    syncCommands: r.syncCommands,
    bytesFromServer: r.bytesFromServer,
    bytesFromClient: r.bytesFromClient,
    msToIdle: round(r.msToIdle, 0),
    newInPhase2: r.newCommitsInPhase2,
    initialIngestRate: round(r.initialIngest.rate, 0),
  }
}
