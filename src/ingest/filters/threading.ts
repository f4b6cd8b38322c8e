import { quotedOriginalMessageId } from '../../mail/mime/delivery-report.ts'
import type { IngestContext, IngestFilter, ThreadMatchKind } from '../context.ts'
import { subjectRequestNumber } from './subject-token.ts'

/**
 * Finds the request a mail belongs to, in the order of DESIGN.md "Threading and hygiene":
 * References, then In-Reply-To against Message-IDs we know (RFC 5322 3.6.4), then for a bounce
 * the Message-ID of the returned original, then the `[#N]` subject token.
 * @see https://www.rfc-editor.org/rfc/rfc5322#section-3.6.4
 */
export const threading: IngestFilter = {
  name: 'threading',
  async run(ctx) {
    const { mail } = ctx
    // References lists the oldest ancestor first and the parent last: ask nearest first.
    if (await matchIds(ctx, [...mail.references].reverse(), 'references')) return
    if (await matchIds(ctx, mail.inReplyTo, 'in-reply-to')) return
    if (ctx.flags.bounce) {
      const original = mail.report?.originalMessageId ?? quotedOriginalMessageId(mail.text)
      if (original !== undefined && (await matchIds(ctx, [original], 'bounce-original'))) return
    }
    const n = subjectRequestNumber(mail.subject)
    if (n === undefined) return
    const request = await ctx.lookups.requestByNumber(n)
    if (request) ctx.thread = { requestId: request.requestId, matchedBy: 'subject' }
  },
}

async function matchIds(ctx: IngestContext, ids: string[], matchedBy: ThreadMatchKind): Promise<boolean> {
  // A mail never threads onto itself (it may be stored already when it is re-processed).
  const candidates = ids.filter((id) => id !== ctx.mail.messageId)
  if (candidates.length === 0) return false
  const match = await ctx.lookups.requestByMessageIds(candidates)
  if (!match) return false
  ctx.thread =
    match.direction === 'outbound'
      ? { requestId: match.requestId, matchedBy, outboundMessageId: match.messageRowId }
      : { requestId: match.requestId, matchedBy }
  return true
}
