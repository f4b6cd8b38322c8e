/**
 * The automatic acknowledgement of a new request (per incoming server, off by default).
 *
 * Automatic mail is where mail loops start: two responders answering each other forever. The
 * rules, from RFC 3834 section 2 and PROVIDERS.md "Inbound mail hygiene":
 * - never answer mail that is itself automatic (auto-replies, bounces, lists, bulk): the ingest
 *   filters set `suppressAutomaticMail` for those;
 * - never write to our own addresses (a mailbox answering itself);
 * - at most one acknowledgement per recipient per 10 minutes and five per day, whatever the
 *   mail looks like: the last line of defence against a responder that marks nothing;
 * - our own mail is marked `Auto-Submitted: auto-replied` and `X-Auto-Response-Suppress: All`
 *   so that well-behaved responders stay quiet.
 * @see https://www.rfc-editor.org/rfc/rfc3834#section-2
 */

/** At most one acknowledgement per recipient within this window (RFC 3834 section 2: "should not send more than one response per period"). */
export const autoAckMinIntervalMs = 10 * 60_000
/** And at most this many per recipient per day. */
export const autoAckDailyLimit = 5
export const dayMs = 24 * 3600_000

export const defaultAutoAckSubject = 'We received your request: {{subject}}'
export const defaultAutoAckBody = [
  'Hello,',
  '',
  'Thank you for your message. We have received it as request #{{number}} ("{{subject}}") and will get back to you soon.',
  '',
  'To add to this request, reply to this email and keep [#{{number}}] in the subject.',
  '',
  'This is an automatic message.',
].join('\n')

export interface AutoAckTemplateValues {
  number: number
  subject: string
  name?: string
}

/** `{{number}}`, `{{subject}}` and `{{name}}` (spaces inside the braces allowed); unknown placeholders stay as they are. */
export function renderAutoAckTemplate(template: string, values: AutoAckTemplateValues): string {
  return template.replace(/\{\{\s*(number|subject|name)\s*\}\}/g, (_, key: string) => {
    if (key === 'number') return String(values.number)
    if (key === 'subject') return values.subject
    return values.name ?? ''
  })
}

export type AutoAckSkipReason = 'disabled' | 'automatic_mail' | 'own_address' | 'invalid_address' | 'rate_limited' | 'no_outgoing_server'

export interface AutoAckResult {
  queued: boolean
  reason?: AutoAckSkipReason
  outboxId?: number
  messageRowId?: number
}
