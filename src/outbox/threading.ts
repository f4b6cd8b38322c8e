import { formatRequestSubject } from '../ingest/filters/subject-token.ts'
import { normalizeMessageId, parseMessageIdList } from '../mail/mime/message-id.ts'

/**
 * How many ids `References` keeps. RFC 5322 3.6.4 builds it from the parent's References plus the
 * parent's Message-ID, which grows without end in a long conversation; mail clients trim it (as
 * RFC 5537 3.4.4 does for news, keeping the first id and the most recent ones), and so do we.
 * @see https://www.rfc-editor.org/rfc/rfc5322#section-3.6.4
 * @see https://www.rfc-editor.org/rfc/rfc5537#section-3.4.4
 */
export const maxReferences = 20

/** A stored message of the conversation, oldest first. */
export interface ConversationMessage {
  direction: 'inbound' | 'outbound'
  messageIdHeader: string | null
  referencesHeader: string | null
}

/**
 * In-Reply-To and References of our next message in a conversation: it answers the latest inbound
 * message (the customer's last mail), and its References are that message's References, then every
 * Message-ID of the conversation, then the parent last, duplicates removed, trimmed to
 * `maxReferences` (the first id and the newest ones kept).
 */
export function threadingHeaders(conversation: ConversationMessage[]): { inReplyTo?: string; references: string[] } {
  const parent = [...conversation].reverse().find((m) => m.direction === 'inbound' && normalizeMessageId(m.messageIdHeader ?? undefined))
  const parentId = parent ? normalizeMessageId(parent.messageIdHeader ?? undefined) : undefined
  const ids: string[] = []
  const seen = new Set<string>()
  const add = (id: string | undefined) => {
    if (!id || seen.has(id) || id === parentId) return
    seen.add(id)
    ids.push(id)
  }
  for (const id of parseMessageIdList(parent?.referencesHeader ?? undefined)) add(id)
  for (const m of conversation) add(normalizeMessageId(m.messageIdHeader ?? undefined))
  if (parentId) ids.push(parentId)
  return { inReplyTo: parentId, references: capReferences(ids) }
}

export function capReferences(ids: string[], max = maxReferences): string[] {
  if (ids.length <= max) return ids
  return [ids[0]!, ...ids.slice(ids.length - (max - 1))]
}

/** `Re: [#N] subject`, with `[#N]` exactly once and at most one `Re:`. */
export function replySubject(requestNumber: number, subject: string): string {
  const base = formatRequestSubject(requestNumber, stripReplyPrefixes(subject))
  return `Re: ${base}`
}

/** Removes leading `Re:`/`AW:`/`Fwd:`-style prefixes (also `Re[2]:`) so that they do not pile up. */
export function stripReplyPrefixes(subject: string): string {
  let s = subject.trim()
  for (;;) {
    const next = s.replace(/^(re|aw|sv|vs|antw|wg|fw|fwd|tr)(\[\d+\])?\s*:\s*/i, '')
    if (next === s) return s
    s = next
  }
}
