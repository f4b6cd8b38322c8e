import type { IngestFilter } from '../context.ts'
import { firstHeader } from './mail-headers.ts'

/**
 * Bounces and other delivery status notifications never start a request and never get an
 * automatic reply; they are attached to the request whose mail bounced (the threading filter
 * reads the returned original's Message-ID) or ignored.
 * @see https://www.rfc-editor.org/rfc/rfc3464 (multipart/report; report-type=delivery-status)
 * @see https://www.rfc-editor.org/rfc/rfc5321#section-4.5.5 (notifications use the null reverse-path)
 */
export const bounce: IngestFilter = {
  name: 'bounce',
  run(ctx) {
    const { mail } = ctx
    let reason: string | undefined
    if (mail.report?.kind === 'delivery-status') {
      const details = [mail.report.action, mail.report.status].filter(Boolean).join(' ')
      reason = `delivery status notification${details ? ` (${details})` : ''}`
    } else if (mail.from && /^(mailer[-_]?daemon|postmaster)$/i.test(localPart(mail.from.address))) {
      reason = `sent by ${mail.from.address}`
    } else if (!ctx.flags.autoReply && hasNullReturnPath(firstHeader(mail, 'return-path'))) {
      // RFC 3834 auto-replies also use the null reverse-path; those are flagged as auto-replies already.
      reason = 'empty Return-Path (<>): a delivery notification'
    }
    if (reason === undefined) return
    ctx.flags.bounce = reason
    ctx.suppressAutomaticMail = true
  },
}

function localPart(address: string): string {
  const at = address.lastIndexOf('@')
  return at < 0 ? address : address.slice(0, at)
}

function hasNullReturnPath(value: string | undefined): boolean {
  return value !== undefined && value.replace(/\([^()]*\)/g, '').replace(/\s+/g, '') === '<>'
}
