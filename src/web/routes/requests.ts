import type { FastifyInstance, FastifyReply } from 'fastify'
import { html } from '../html.ts'
import type { Html } from '../html.ts'
import { csrfField, sendPage } from '../render.ts'
import { setFlash } from '../plugins/auth.ts'
import { mailBodyDocument, requestList, requestPage, requestStyles } from '../views/requests.ts'
import { outboxStatusBadge } from './replies.ts'
import { requestStatuses } from '../../requests/types.ts'
import type { RequestStatus } from '../../requests/types.ts'
import { isAppError } from '../../shared/errors.ts'

/** Extra stylesheet of the request and audit pages. */
export const requestStylesheet = html`<link rel="stylesheet" href="/assets/requests.css">`

/**
 * The strict policy of a mail body: nothing runs, nothing is fetched but our own images (and
 * `data:`), inline styles only, and the document is sandboxed even if opened on its own (CSP
 * `sandbox` without tokens: no scripts, no forms, no popups, an opaque origin).
 * @see https://www.w3.org/TR/CSP3/#directive-sandbox
 */
export const mailBodyCsp = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"
/** The same with remote images allowed, once the agent clicked "Show remote images". */
export const mailBodyCspRemoteImages = "default-src 'none'; img-src 'self' data: https: http:; style-src 'unsafe-inline'; sandbox"

export function positiveInt(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^\d{1,9}$/.test(value)) return undefined
  const n = Number(value)
  return n >= 1 ? n : undefined
}

function notFound(reply: FastifyReply, text = 'This request does not exist.') {
  return reply.code(404).type('text/plain; charset=utf-8').send(text)
}

/** The agent's side: the Requests list, a request's conversation, its attachments and mail bodies. */
export async function requestRoutes(app: FastifyInstance) {
  const { requests, emailServers, outbox } = app.services
  const pre = { preHandler: app.requireUser }

  app.get('/assets/requests.css', async (_req, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(requestStyles),
  )

  app.get('/requests', pre, async (req, reply) => {
    const q = req.query as Record<string, string | undefined>
    const server = positiveInt(q.server)
    const status = requestStatuses.includes(q.status as RequestStatus) ? (q.status as RequestStatus) : undefined
    const page = await requests.list({ serverId: server, status, page: positiveInt(q.page) ?? 1 })
    const servers = (await emailServers.list('incoming')).map((s) => ({ id: s.id, name: s.name }))
    const body = requestList({ page, servers, filter: { server, status } })
    return sendPage(req, reply, { title: 'Requests', section: 'requests', head: requestStylesheet }, body)
  })

  app.get('/requests/:id', pre, async (req, reply) => {
    const id = positiveInt((req.params as { id: string }).id)
    if (!id) return notFound(reply)
    let detail
    try {
      detail = await requests.get(id)
    } catch (err) {
      if (isAppError(err, 'request_not_found')) return notFound(reply)
      throw err
    }
    const csrf = csrfField(reply)
    const outboundIds = detail.messages.filter((m) => m.direction === 'outbound').map((m) => m.id)
    const outboundStatus = new Map<number, Html>()
    if (outboundIds.length) {
      for (const [messageId, item] of await outbox.statusForMessages(outboundIds)) {
        outboundStatus.set(messageId, outboxStatusBadge(item, csrf))
      }
    }
    const remoteImagesFor = positiveInt((req.query as Record<string, string | undefined>).remoteImages)
    return sendPage(
      req,
      reply,
      { title: `#${detail.number} ${detail.subject}`, section: 'requests', head: requestStylesheet },
      requestPage(detail, { csrf, csrfToken: reply.generateCsrf(), remoteImagesFor, outboundStatus }),
    )
  })

  app.post('/requests/:id/status', pre, async (req, reply) => {
    const id = positiveInt((req.params as { id: string }).id)
    if (!id) return notFound(reply)
    const status = (req.body as Record<string, string | undefined> | undefined)?.status
    if (!requestStatuses.includes(status as RequestStatus)) {
      setFlash(req, 'error', 'Choose a status from the list.')
      return reply.redirect(`/requests/${id}`, 303)
    }
    try {
      await requests.setStatus(id, status as RequestStatus)
    } catch (err) {
      if (isAppError(err, 'request_not_found')) return notFound(reply)
      throw err
    }
    setFlash(req, 'success', `Status set to ${status}.`)
    return reply.redirect(`/requests/${id}`, 303)
  })

  // The sanitized HTML of one message, for the sandboxed iframe of the request page, under its
  // own strict CSP (PROVIDERS.md "Inbound mail hygiene": a second layer behind the sanitizer).
  app.get('/requests/:id/messages/:messageId/body', pre, async (req, reply) => {
    const params = req.params as { id: string; messageId: string }
    const id = positiveInt(params.id)
    const messageId = positiveInt(params.messageId)
    if (!id || !messageId) return notFound(reply, 'This message does not exist.')
    const remote = (req.query as Record<string, string | undefined>).images === 'remote'
    let body
    try {
      body = await requests.messageBody(id, messageId, { remoteImages: remote })
    } catch (err) {
      if (isAppError(err, 'message_not_found')) return notFound(reply, 'This message does not exist.')
      throw err
    }
    return reply
      .header('content-security-policy', body.remoteImagesShown ? mailBodyCspRemoteImages : mailBodyCsp)
      .header('cache-control', 'no-store')
      .type('text/html; charset=utf-8')
      .send(mailBodyDocument(body.html))
  })

  app.get('/requests/:id/attachments/:attachmentId', pre, async (req, reply) => {
    const params = req.params as { id: string; attachmentId: string }
    const id = positiveInt(params.id)
    const attachmentId = positiveInt(params.attachmentId)
    if (!id || !attachmentId) return notFound(reply, 'This attachment does not exist.')
    const forceDownload = (req.query as Record<string, string | undefined>).download === '1'
    let attachment
    try {
      attachment = await requests.attachment(id, attachmentId, { forceDownload })
    } catch (err) {
      if (isAppError(err, 'attachment_not_found')) return notFound(reply, 'This attachment does not exist.')
      throw err
    }
    return reply
      .header('content-type', attachment.headers.contentType)
      .header('content-disposition', attachment.headers.contentDisposition)
      .header('content-security-policy', "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox")
      .header('cache-control', 'private, max-age=3600')
      .send(attachment.content)
  })
}
