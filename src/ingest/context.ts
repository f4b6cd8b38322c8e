import type { ParsedMail } from '../mail/mime/types.ts'

/**
 * The state the ingest filters share while one parsed message goes through the chain.
 *
 * Filters read `mail` (sender-controlled, untrusted) and write the typed decision fields below.
 * No header value is ever copied into a decision: a sender cannot, say, add an `X-Outcome:`
 * header to get their mail ignored or attached to someone else's request (the Zammad pitfall
 * of `x-zammad-*` pseudo-headers, see STYLE.md).
 */
export interface IngestContext {
  readonly mail: ParsedMail
  readonly mailbox: IngestMailbox
  /** Why this mail is not a normal customer mail; each value is a human-readable reason. */
  flags: IngestFlags
  /** Never send an automatic reply (acknowledgement, notification) to this mail. */
  suppressAutomaticMail: boolean
  /** The request this mail belongs to, when a filter matched one. */
  thread?: ThreadMatch
  /** Set when the mail must not become (part of) a request. The chain stops once it is set. */
  outcome?: IngestOutcome
  /** Facts worth showing in the Email Audit that are not flags (e.g. why automatic mail is suppressed). */
  notes: string[]
  readonly lookups: IngestLookups
}

export interface IngestMailbox {
  id: number
  /** The mailbox's own address, e.g. support@example.com. */
  emailAddress: string
  /** Further addresses that are ours (aliases, other deskmail mailboxes); compared case-insensitively. */
  ownAddresses: string[]
  /** The domain in the Message-IDs deskmail generates (`<...@ownMessageIdDomain>`). */
  ownMessageIdDomain: string
}

export interface IngestFlags {
  /** An automatic reply (out-of-office, vacation, autoresponder, read receipt). */
  autoReply?: string
  /** A bounce or other delivery status notification. */
  bounce?: string
  /** Bulk or mailing-list mail: still a request, but never answered automatically. */
  bulk?: string
  /** Our own mail coming back (a loop). */
  ownMail?: string
}

export type ThreadMatchKind = 'references' | 'in-reply-to' | 'subject' | 'bounce-original'

export interface ThreadMatch {
  requestId: number
  matchedBy: ThreadMatchKind
  /** Row id of our outbound message this mail answers or bounces, when the match was one. */
  outboundMessageId?: number
}

export interface IngestOutcome {
  /** `ignored`: recorded in the Email Audit only. `quarantined`: kept for an admin to re-process. */
  kind: 'ignored' | 'quarantined'
  reason: string
}

export interface MessageIdMatch {
  requestId: number
  messageRowId: number
  direction: 'inbound' | 'outbound'
}

/** Read-only questions the filters ask about what is already stored (implemented by the pipeline). */
export interface IngestLookups {
  /**
   * The stored message whose Message-ID (without angle brackets, compared exactly) is one of
   * `ids`. `ids` are given most relevant first; return the match for the earliest id in that
   * order that is known, or undefined. Called with at most a few hundred ids.
   */
  requestByMessageIds(ids: string[]): Promise<MessageIdMatch | undefined>
  /** The request with this number (the `[#N]` in subjects), if it exists. */
  requestByNumber(n: number): Promise<{ requestId: number } | undefined>
}

/** A step of the ingest chain. Order lives in the `ingestFilters` array, not in file names. */
export interface IngestFilter {
  /** Stable, kebab-case; shown in logs and the Email Audit. */
  readonly name: string
  run(ctx: IngestContext): void | Promise<void>
}

export function createContext(init: {
  mail: ParsedMail
  mailbox: IngestMailbox
  lookups: IngestLookups
}): IngestContext {
  return {
    mail: init.mail,
    mailbox: init.mailbox,
    lookups: init.lookups,
    flags: {},
    suppressAutomaticMail: false,
    notes: [],
  }
}

/** What the pipeline does with the mail once the filters have run. */
export type IngestDecision =
  | { kind: 'new-request' }
  | { kind: 'add-to-request'; requestId: number; matchedBy: ThreadMatchKind; outboundMessageId?: number }
  | { kind: 'ignored' | 'quarantined'; reason: string }

export function ingestDecision(ctx: IngestContext): IngestDecision {
  if (ctx.outcome) return { kind: ctx.outcome.kind, reason: ctx.outcome.reason }
  if (ctx.thread) {
    const { requestId, matchedBy, outboundMessageId } = ctx.thread
    return outboundMessageId === undefined
      ? { kind: 'add-to-request', requestId, matchedBy }
      : { kind: 'add-to-request', requestId, matchedBy, outboundMessageId }
  }
  return { kind: 'new-request' }
}
