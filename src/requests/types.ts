import type { InboundOutcome, RequestsTable } from '../storage/schema.ts'

export type RequestStatus = RequestsTable['status']
export const requestStatuses: readonly RequestStatus[] = Object.freeze(['open', 'pending', 'resolved', 'closed'])

export const requestStatusLabels: Record<RequestStatus, string> = {
  open: 'Open',
  pending: 'Pending',
  resolved: 'Resolved',
  closed: 'Closed',
}

/**
 * What a message is besides a plain customer mail, stored in `messages.flags` as a comma-separated
 * list of these tokens (never a header value: a sender cannot set them).
 */
export type MessageFlag = 'auto-reply' | 'bounce' | 'bulk'
export const messageFlagLabels: Record<MessageFlag, string> = {
  'auto-reply': 'Automatic reply',
  bounce: 'Bounce',
  bulk: 'Bulk',
}

export function formatMessageFlags(flags: MessageFlag[]): string | null {
  return flags.length === 0 ? null : flags.join(',')
}

export function parseMessageFlags(value: string | null): MessageFlag[] {
  if (!value) return []
  return value.split(',').filter((f): f is MessageFlag => Object.hasOwn(messageFlagLabels, f))
}

export interface Page<T> {
  items: T[]
  total: number
  /** 1-based. */
  page: number
  pageSize: number
}

export interface Paging {
  /** 1-based; default 1. */
  page?: number
  /** Default 50, at most 200. */
  pageSize?: number
}

export interface Contact {
  id: number
  email: string
  name: string | null
}

export interface RequestListFilter extends Paging {
  /** The incoming email server (mailbox) the request came in through. */
  serverId?: number
  status?: RequestStatus
}

export interface RequestSummary {
  id: number
  number: number
  subject: string
  status: RequestStatus
  isBulk: boolean
  serverId: number | null
  serverName: string | null
  requester: Contact | null
  createdAt: number
  lastActivityAt: number
  messageCount: number
}

export interface AttachmentMeta {
  id: number
  messageId: number
  /** Sanitized basename (see `sanitizeAttachmentName`). */
  filename: string
  contentType: string
  size: number
  contentId: string | null
  /** Shown by the HTML body through `cid:` (an embedded image) rather than listed. */
  inline: boolean
  sha256: string
}

export interface AttachmentContent extends AttachmentMeta {
  requestId: number
  content: Buffer
}

export interface MailboxAddress {
  address: string
  name: string
}

export interface RequestMessage {
  id: number
  requestId: number
  direction: 'inbound' | 'outbound'
  inboundMailId: number | null
  /** Without angle brackets. */
  messageIdHeader: string | null
  /** Message-IDs without angle brackets. */
  inReplyTo: string[]
  references: string[]
  from: MailboxAddress | null
  /** RFC 5322 address lists as stored (`"Name" <a@b>, c@d`), '' when none. */
  to: string
  cc: string
  subject: string | null
  textBody: string | null
  hasHtml: boolean
  /** Remote images blocked in the stored HTML. */
  remoteImages: number
  flags: MessageFlag[]
  authorUserId: number | null
  deliveryStatus: 'received' | 'queued' | 'sent' | 'failed' | 'bounced'
  deliveryError: string | null
  createdAt: number
  attachments: AttachmentMeta[]
}

export interface RequestDetail extends RequestSummary {
  messages: RequestMessage[]
}

export interface AuditFilter extends Paging {
  serverId?: number
  outcome?: InboundOutcome
  /** Exact Message-ID, with or without angle brackets. */
  messageId?: string
  /** Case-insensitive substring of the sender or the subject. */
  search?: string
}

/** One Email Audit row: a message received and what became of it. */
export interface AuditEntry {
  id: number
  serverId: number
  serverName: string | null
  sourceKey: string
  rawHash: string
  size: number
  messageIdHeader: string | null
  sender: string | null
  subject: string | null
  receivedAt: number
  outcome: InboundOutcome
  reason: string | null
  requestId: number | null
  requestNumber: number | null
  messageRowId: number | null
  attempts: number
  processedAt: number | null
}

/** Mail figures of one incoming server, for its status. */
export interface ServerMailStats {
  serverId: number
  /** Messages received since 00:00 UTC. */
  messagesToday: number
  lastReceivedAt: number | null
  /** Messages waiting in the quarantine. */
  quarantined: number
}
