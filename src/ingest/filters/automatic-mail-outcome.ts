import type { IngestFilter } from '../context.ts'

/**
 * Auto-replies and bounces start no new request (PROVIDERS.md "Inbound mail hygiene"): when the
 * threading filter attached them to a request they stay there, flagged; otherwise they are
 * ignored, with the reason in the Email Audit.
 */
export const automaticMailOutcome: IngestFilter = {
  name: 'automatic-mail-outcome',
  run(ctx) {
    const { bounce, autoReply } = ctx.flags
    if (ctx.thread) return
    if (bounce) {
      ctx.outcome = { kind: 'ignored', reason: `bounce that matches no request: ${bounce}` }
    } else if (autoReply) {
      ctx.outcome = { kind: 'ignored', reason: `automatic reply that matches no request: ${autoReply}` }
    }
  },
}
