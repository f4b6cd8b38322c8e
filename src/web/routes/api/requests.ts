import { z } from 'zod'
import type { ApiModule } from './index.ts'
import { requestStatuses } from '../../../requests/types.ts'
import type { AuditEntry, RequestMessage, RequestStatus, RequestSummary } from '../../../requests/types.ts'
import { AppError } from '../../../shared/errors.ts'

const iso = (ms: number | null) => (ms ? new Date(ms).toISOString() : null)

const statusEnum = z.enum(requestStatuses as [string, ...string[]])
const outcomeEnum = z.enum(['new_request', 'reply', 'ignored', 'quarantined', 'pending'])
const id = z.coerce.number().int().min(1)
const paging = {
  page: z.coerce.number().int().min(1).optional().describe('1-based page number'),
  pageSize: z.coerce.number().int().min(1).max(200).optional().describe('Items per page (default 50)'),
}
const pageMeta = { total: z.number(), page: z.number(), pageSize: z.number() }

const contactSchema = z.object({ id: z.number(), email: z.string(), name: z.string().nullable() })

const requestSchema = z.object({
  id: z.number(),
  number: z.number(),
  subject: z.string(),
  status: statusEnum,
  isBulk: z.boolean(),
  serverId: z.number().nullable(),
  serverName: z.string().nullable(),
  requester: contactSchema.nullable(),
  createdAt: z.string().nullable(),
  lastActivityAt: z.string().nullable(),
  messageCount: z.number(),
})

const attachmentSchema = z.object({
  id: z.number(),
  filename: z.string(),
  contentType: z.string(),
  size: z.number(),
  contentId: z.string().nullable(),
  inline: z.boolean(),
  sha256: z.string(),
})

const messageSchema = z.object({
  id: z.number(),
  direction: z.enum(['inbound', 'outbound']),
  messageId: z.string().nullable().describe('Message-ID without angle brackets'),
  inReplyTo: z.array(z.string()),
  references: z.array(z.string()),
  from: z.object({ address: z.string(), name: z.string() }).nullable(),
  to: z.string(),
  cc: z.string(),
  subject: z.string().nullable(),
  text: z.string().nullable(),
  hasHtml: z.boolean().describe('The sanitized HTML is shown in the portal'),
  remoteImagesBlocked: z.number(),
  flags: z.array(z.enum(['auto-reply', 'bounce', 'bulk'])),
  deliveryStatus: z.string(),
  deliveryError: z.string().nullable(),
  createdAt: z.string().nullable(),
  attachments: z.array(attachmentSchema),
})

const auditSchema = z.object({
  id: z.number(),
  serverId: z.number(),
  serverName: z.string().nullable(),
  sourceKey: z.string(),
  messageId: z.string().nullable(),
  sender: z.string().nullable(),
  subject: z.string().nullable(),
  size: z.number(),
  receivedAt: z.string().nullable(),
  outcome: outcomeEnum,
  reason: z.string().nullable(),
  requestId: z.number().nullable(),
  requestNumber: z.number().nullable(),
  attempts: z.number(),
})

function requestJson(r: RequestSummary) {
  return {
    id: r.id,
    number: r.number,
    subject: r.subject,
    status: r.status,
    isBulk: r.isBulk,
    serverId: r.serverId,
    serverName: r.serverName,
    requester: r.requester,
    createdAt: iso(r.createdAt),
    lastActivityAt: iso(r.lastActivityAt),
    messageCount: r.messageCount,
  }
}

function messageJson(m: RequestMessage) {
  return {
    id: m.id,
    direction: m.direction,
    messageId: m.messageIdHeader,
    inReplyTo: m.inReplyTo,
    references: m.references,
    from: m.from,
    to: m.to,
    cc: m.cc,
    subject: m.subject,
    text: m.textBody,
    hasHtml: m.hasHtml,
    remoteImagesBlocked: m.remoteImages,
    flags: m.flags,
    deliveryStatus: m.deliveryStatus,
    deliveryError: m.deliveryError,
    createdAt: iso(m.createdAt),
    attachments: m.attachments.map((a) => ({
      id: a.id,
      filename: a.filename,
      contentType: a.contentType,
      size: a.size,
      contentId: a.contentId,
      inline: a.inline,
      sha256: a.sha256,
    })),
  }
}

function auditJson(e: AuditEntry) {
  return {
    id: e.id,
    serverId: e.serverId,
    serverName: e.serverName,
    sourceKey: e.sourceKey,
    messageId: e.messageIdHeader,
    sender: e.sender,
    subject: e.subject,
    size: e.size,
    receivedAt: iso(e.receivedAt),
    outcome: e.outcome,
    reason: e.reason,
    requestId: e.requestId,
    requestNumber: e.requestNumber,
    attempts: e.attempts,
  }
}

/** Requests, the Email Audit and the quarantine, read-only (API tokens act for admins). */
export const requestsApi: ApiModule = (app, api) => {
  const { requests } = app.services

  api.route(app, {
    method: 'GET',
    path: '/requests',
    tag: 'requests',
    summary: 'Requests, most recent activity first',
    query: z.object({ serverId: id.optional().describe('Incoming email server'), status: statusEnum.optional(), ...paging }),
    response: z.object({ data: z.array(requestSchema), ...pageMeta }),
    handler: async ({ query }) => {
      const status = query.status as RequestStatus | undefined
      const page = await requests.list({ serverId: query.serverId, status, page: query.page, pageSize: query.pageSize })
      return { data: page.items.map(requestJson), total: page.total, page: page.page, pageSize: page.pageSize }
    },
  })

  api.route(app, {
    method: 'GET',
    path: '/requests/{id}',
    tag: 'requests',
    summary: 'A request with its conversation (messages and attachment metadata)',
    response: requestSchema.extend({ messages: z.array(messageSchema) }),
    handler: async ({ params }) => {
      const parsed = id.safeParse(params.id)
      if (!parsed.success) throw new AppError('request_not_found', 'This request does not exist.')
      const detail = await requests.get(parsed.data)
      return { ...requestJson(detail), messages: detail.messages.map(messageJson) }
    },
  })

  api.route(app, {
    method: 'GET',
    path: '/email-audit',
    tag: 'email-audit',
    summary: 'Every message received and what became of it, newest first',
    query: z.object({
      serverId: id.optional(),
      outcome: outcomeEnum.optional(),
      messageId: z.string().max(300).optional().describe('Exact Message-ID, with or without angle brackets'),
      search: z.string().max(200).optional().describe('Substring of the sender or the subject'),
      ...paging,
    }),
    response: z.object({ data: z.array(auditSchema), ...pageMeta }),
    handler: async ({ query }) => {
      const page = await requests.audit(query)
      return { data: page.items.map(auditJson), total: page.total, page: page.page, pageSize: page.pageSize }
    },
  })

  api.route(app, {
    method: 'GET',
    path: '/quarantine',
    tag: 'email-audit',
    summary: 'Messages that could not be processed, with the reason',
    query: z.object({ serverId: id.optional(), ...paging }),
    response: z.object({ data: z.array(auditSchema), ...pageMeta }),
    handler: async ({ query }) => {
      const page = await requests.quarantine(query)
      return { data: page.items.map(auditJson), total: page.total, page: page.page, pageSize: page.pageSize }
    },
  })
}
