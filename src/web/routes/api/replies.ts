import { z } from 'zod'
import type { ApiModule } from './index.ts'
import { AppError } from '../../../shared/errors.ts'
import { maxReplyBodyChars } from '../../../outbox/outbox.ts'
import type { OutboxSummary } from '../../../outbox/outbox.ts'

const iso = (ms: number | null) => (ms ? new Date(ms).toISOString() : null)

const outboxItemSchema = z.object({
  id: z.number(),
  kind: z.enum(['reply', 'auto_ack', 'test']),
  status: z.enum(['queued', 'sending', 'sent', 'failed', 'waiting_authorization', 'uncertain']),
  statusLabel: z.string(),
  messageId: z.number().nullable().describe('Row id of the outbound message in the conversation'),
  requestId: z.number().nullable(),
  server: z.object({ id: z.number().nullable(), name: z.string().nullable() }),
  to: z.array(z.string()),
  messageIdHeader: z.string().describe('The Message-ID header, without angle brackets'),
  attempts: z.number(),
  lastError: z.string().nullable(),
  smtpResponse: z.string().nullable(),
  nextAttemptAt: z.string().nullable(),
  createdAt: z.string(),
  sentAt: z.string().nullable(),
  canSendAgain: z.boolean(),
})

function present(s: OutboxSummary): z.infer<typeof outboxItemSchema> {
  return {
    id: s.id,
    kind: s.kind,
    status: s.status,
    statusLabel: s.statusLabel,
    messageId: s.messageRowId,
    requestId: s.requestId,
    server: { id: s.serverId, name: s.serverName },
    to: s.to,
    messageIdHeader: s.messageIdHeader,
    attempts: s.attempts,
    lastError: s.lastError,
    smtpResponse: s.smtpResponse,
    nextAttemptAt: iso(s.nextAttemptAt),
    createdAt: new Date(s.createdAt).toISOString(),
    sentAt: iso(s.sentAt),
    canSendAgain: s.canSendAgain,
  }
}

const base64 = /^[A-Za-z0-9+/\r\n]*={0,2}\s*$/

const replyBody = z.object({
  body: z.string().max(maxReplyBodyChars),
  attachments: z
    .array(
      z.object({
        filename: z.string().min(1).max(255),
        contentType: z.string().max(255).default('application/octet-stream'),
        contentBase64: z.string().regex(base64, 'must be base64'),
      }),
    )
    .max(20)
    .optional(),
})

function requestIdOf(params: Record<string, string>): number {
  const id = Number(params.id)
  if (!Number.isSafeInteger(id) || id < 1) throw new AppError('request_not_found', 'This request does not exist.')
  return id
}

/**
 * `POST /api/v1/requests/{id}/replies` (the same reply as the portal's form), the outbox items of a
 * request, the outbox itself, and Send again.
 */
export const repliesApi: ApiModule = (app, api) => {
  const { outbox } = app.services

  api.route(app, {
    method: 'POST',
    path: '/requests/{id}/replies',
    tag: 'requests',
    summary: 'Reply to the customer: queued in the outbox in the same transaction as the conversation update, then sent over SMTP',
    body: replyBody,
    response: z.object({ data: outboxItemSchema }),
    handler: async ({ params, body, req, reply }) => {
      const queued = await outbox.queueReply({
        requestId: requestIdOf(params),
        authorUserId: req.apiClient?.userId ?? null,
        body: body.body,
        attachments: (body.attachments ?? []).map((a) => ({
          filename: a.filename,
          contentType: a.contentType,
          content: Buffer.from(a.contentBase64, 'base64'),
        })),
      })
      reply.code(202)
      return { data: present(await outbox.get(queued.outboxId)) }
    },
  })

  api.route(app, {
    method: 'GET',
    path: '/requests/{id}/outbox',
    tag: 'requests',
    summary: "Delivery state of a request's outgoing mail",
    response: z.object({ data: z.array(outboxItemSchema) }),
    handler: async ({ params }) => ({ data: (await outbox.list({ requestId: requestIdOf(params) })).map(present) }),
  })

  api.route(app, {
    method: 'GET',
    path: '/outbox',
    tag: 'outbox',
    summary: 'Outgoing mail, newest first',
    query: z.object({
      status: z.enum(['queued', 'sending', 'sent', 'failed', 'waiting_authorization', 'uncertain']).optional(),
      limit: z.coerce.number().int().min(1).max(1000).default(100),
    }),
    response: z.object({ data: z.array(outboxItemSchema) }),
    handler: async ({ query }) => {
      const items = await outbox.list({ statuses: query.status ? [query.status] : undefined, limit: query.limit })
      return { data: items.map(present) }
    },
  })

  api.route(app, {
    method: 'POST',
    path: '/outbox/{id}/send-again',
    tag: 'outbox',
    summary: 'Send a failed message, or one whose outcome is unknown, again (same Message-ID)',
    response: z.object({ data: outboxItemSchema }),
    handler: async ({ params }) => ({ data: present(await outbox.resend(Number(params.id))) }),
  })
}
