import multipart from '@fastify/multipart'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { setFlash } from '../plugins/auth.ts'
import { html } from '../html.ts'
import type { Html } from '../html.ts'
import { isAppError } from '../../shared/errors.ts'
import { maxAttachmentBytes } from '../../outbox/compose.ts'
import type { OutgoingAttachment } from '../../outbox/compose.ts'
import { maxReplyBodyChars } from '../../outbox/outbox.ts'
import type { OutboxSummary } from '../../outbox/outbox.ts'

/** At most this many files per reply. */
const maxFiles = 20

/**
 * The agent's reply from a request's page, and Send again for an outgoing message that failed or
 * whose outcome is unknown.
 *
 * The reply form posts `multipart/form-data` (text and files) with the CSRF token in the query
 * string (`?_csrf=`): the portal's CSRF check runs before the handler reads the body, and a
 * multipart body cannot be read twice. A `preValidation` hook of this plugin hands the query token
 * to that check; multipart parsing is registered in this plugin's scope only.
 */
export async function replyRoutes(app: FastifyInstance) {
  const { outbox } = app.services
  await app.register(multipart, {
    limits: { fileSize: maxAttachmentBytes, files: maxFiles, fields: 20, fieldSize: maxReplyBodyChars * 4, parts: maxFiles + 20 },
  })
  app.addHook('preValidation', async (req) => {
    if (req.isMultipart()) {
      const token = (req.query as Record<string, unknown> | undefined)?._csrf
      req.body = { _csrf: typeof token === 'string' ? token : undefined }
    }
  })

  const requestPage = (id: number | string) => `/requests/${encodeURIComponent(String(id))}`

  app.post('/requests/:id/replies', { preHandler: app.requireUser }, async (req, reply) => {
    const requestId = Number((req.params as { id: string }).id)
    if (!Number.isSafeInteger(requestId) || requestId < 1) {
      return reply.code(404).type('text/plain; charset=utf-8').send('This request does not exist.')
    }
    let form: { body: string; attachments: OutgoingAttachment[] }
    try {
      form = await readReplyForm(req)
    } catch (err) {
      return back(req, reply, requestPage(requestId), 'error', uploadErrorMessage(err))
    }
    try {
      const queued = await outbox.queueReply({ requestId, authorUserId: req.user!.id, body: form.body, attachments: form.attachments })
      const files = form.attachments.length ? ` with ${form.attachments.length} attachment${form.attachments.length === 1 ? '' : 's'}` : ''
      setFlash(req, 'success', `Reply queued${files}: it is being sent to the customer. Its delivery status is shown beside it.`)
      return reply.redirect(`${requestPage(requestId)}#message-${queued.messageRowId}`, 303)
    } catch (err) {
      if (!isAppError(err)) throw err
      if (err.code === 'request_not_found') return reply.code(404).type('text/plain; charset=utf-8').send(err.message)
      return back(req, reply, requestPage(requestId), 'error', `The reply was not sent: ${err.message}`)
    }
  })

  app.post('/outbox/:itemId/send-again', { preHandler: app.requireUser }, async (req, reply) => {
    const id = Number((req.params as { itemId: string }).itemId)
    const item = await outbox.get(id)
    // Test mail belongs to the admins' pages; a request's mail to whoever works on requests.
    if (item.kind === 'test' && req.user!.role !== 'admin') {
      return reply.code(403).type('text/plain; charset=utf-8').send('Only administrators can resend test mail.')
    }
    const target = item.requestId ? requestPage(item.requestId) : '/admin/support-channel/outbox'
    try {
      await outbox.resend(id)
      const text = `Queued again with the same Message-ID (<${item.messageIdHeader}>), so a recipient who already got it can tell the copies apart.`
      return back(req, reply, target, 'success', text)
    } catch (err) {
      if (!isAppError(err)) throw err
      return back(req, reply, target, 'error', err.message)
    }
  })
}

function back(req: FastifyRequest, reply: FastifyReply, url: string, kind: 'success' | 'error', text: string) {
  setFlash(req, kind, text)
  return reply.redirect(url, 303)
}

/** Reads the `body` field and the files of the reply form (empty file inputs are skipped). */
async function readReplyForm(req: FastifyRequest): Promise<{ body: string; attachments: OutgoingAttachment[] }> {
  if (!req.isMultipart()) {
    // A plain form post (no files) is accepted as well.
    const b = (req.body ?? {}) as Record<string, unknown>
    return { body: typeof b.body === 'string' ? b.body : '', attachments: [] }
  }
  let body = ''
  const attachments: OutgoingAttachment[] = []
  let total = 0
  for await (const part of req.parts()) {
    if (part.type === 'file') {
      const content = await part.toBuffer()
      // A file input left empty still sends a part, with no name and no bytes.
      if (!part.filename && content.length === 0) continue
      total += content.length
      if (total > maxAttachmentBytes) throw new TooLarge()
      attachments.push({ filename: browserFileName(part.filename), contentType: part.mimetype || 'application/octet-stream', content })
    } else if (part.fieldname === 'body') {
      body = String(part.value ?? '')
    }
  }
  return { body, attachments }
}

class TooLarge extends Error {}

/**
 * Browsers write `"`, CR and LF in a multipart file name as `%22`, `%0D` and `%0A` (WHATWG HTML,
 * "multipart/form-data encoding algorithm"); turned back here so the name is the one the agent
 * chose (the outbox sanitizes it anyway).
 * @see https://html.spec.whatwg.org/multipage/form-control-infrastructure.html#multipart-form-data
 */
function browserFileName(name: string): string {
  return name.replace(/%22/g, '"').replace(/%0D/gi, '\r').replace(/%0A/gi, '\n')
}

function uploadErrorMessage(err: unknown): string {
  const code = (err as { code?: string }).code
  if (err instanceof TooLarge || code === 'FST_REQ_FILE_TOO_LARGE') {
    return `The reply was not sent: the attachments are larger than ${maxAttachmentBytes / 1048576} MB together, more than mail servers accept.`
  }
  if (code === 'FST_FILES_LIMIT' || code === 'FST_PARTS_LIMIT') return `The reply was not sent: attach at most ${maxFiles} files.`
  if (code === 'FST_FIELDS_LIMIT' || code === 'FST_PROTO_VIOLATION') {
    return 'The reply was not sent: the form could not be read. Reload the page and try again.'
  }
  throw err
}

// The portal's status colours, reused: green sent, amber on its way or unknown, red needs action.
const statusClass: Record<OutboxSummary['status'], string> = {
  queued: 'status-pending_authorization',
  sending: 'status-pending_authorization',
  sent: 'status-connected',
  uncertain: 'status-degraded',
  waiting_authorization: 'status-needs_reauthorization',
  failed: 'status-error',
}

/**
 * The delivery state of one outgoing message, for the request page and the outbox list: the
 * status, the server's answer or the last error, and Send again where it applies. `csrf` is the
 * page's `csrfField(reply)`.
 */
export function outboxStatusBadge(item: OutboxSummary, csrf: Html): Html {
  const detail = item.status === 'sent' ? item.smtpResponse : item.lastError
  return html`<span class="outbox-status" data-outbox-id="${item.id}" data-outbox-status="${item.status}">${
    item.kind === 'auto_ack' ? html`<small class="outbox-kind">Automatic acknowledgement</small> ` : ''
  }<span class="status ${statusClass[item.status]}">${item.statusLabel}</span>${
    item.status === 'sent' && item.sentAt ? html` <small>${new Date(item.sentAt).toISOString().replace('T', ' ').slice(0, 19)} UTC</small>` : ''
  }${detail ? html`<br><small class="status-message">${detail}</small>` : ''}${
    item.canSendAgain
      ? html`<form method="post" action="/outbox/${item.id}/send-again" class="send-again">${csrf}<button type="submit">Send again</button></form>`
      : ''
  }</span>`
}
