import type { FastifyInstance, FastifyReply } from 'fastify'
import { csrfField, sendPage } from '../../render.ts'
import { setFlash } from '../../plugins/auth.ts'
import { AUDIT_URL, QUARANTINE_URL, auditPage, outcomeText, quarantinePage } from '../../views/email-audit.ts'
import type { ServerRow } from '../../views/email-audit.ts'
import { positiveInt, requestStylesheet } from '../requests.ts'
import { contentDisposition } from '../../../requests/downloads.ts'
import type { InboundOutcome } from '../../../storage/schema.ts'
import { isAppError } from '../../../shared/errors.ts'

const outcomes: InboundOutcome[] = ['new_request', 'reply', 'ignored', 'quarantined', 'pending']

/**
 * Admin > Support Channel > Email Audit (every message received and what became of it, with the
 * mail status of each incoming server) and its Quarantine (Re-process, raw download).
 */
export async function emailAuditRoutes(app: FastifyInstance) {
  const { requests, emailServers, ingest } = app.services
  const pre = { preHandler: app.requireAdmin }

  const servers = async (): Promise<ServerRow[]> =>
    (await emailServers.list('incoming')).map((s) => ({
      id: s.id,
      name: s.name,
      emailAddress: s.emailAddress,
      status: s.status,
      statusLabel: s.statusLabel,
      statusMessage: s.statusMessage,
      lastSyncAt: s.lastSyncAt,
    }))

  app.get(AUDIT_URL, pre, async (req, reply) => {
    const q = req.query as Record<string, string | undefined>
    const server = positiveInt(q.server)
    const outcome = outcomes.includes(q.outcome as InboundOutcome) ? (q.outcome as InboundOutcome) : undefined
    const messageId = q.messageId?.trim() || undefined
    const search = q.q?.trim() || undefined
    const page = await requests.audit({ serverId: server, outcome, messageId, search, page: positiveInt(q.page) ?? 1 })
    const list = await servers()
    const stats = await requests.serverStats(list.map((s) => s.id))
    return sendPage(
      req,
      reply,
      { title: 'Email Audit', section: 'admin', head: requestStylesheet },
      auditPage({ page, servers: list, stats, filter: { server, outcome, messageId, q: search } }),
    )
  })

  app.get(QUARANTINE_URL, pre, async (req, reply) => {
    const q = req.query as Record<string, string | undefined>
    const server = positiveInt(q.server)
    const page = await requests.quarantine({ serverId: server, page: positiveInt(q.page) ?? 1 })
    const list = await servers()
    const stats = await requests.serverStats(list.map((s) => s.id))
    return sendPage(
      req,
      reply,
      { title: 'Quarantine', section: 'admin', head: requestStylesheet },
      quarantinePage({ page, servers: list, stats, filter: { server }, csrf: csrfField(reply) }),
    )
  })

  app.post(`${QUARANTINE_URL}/:id/reprocess`, pre, async (req, reply) => {
    const id = positiveInt((req.params as { id: string }).id)
    if (!id) return notFound(reply)
    try {
      const result = await ingest.reprocess(id)
      const outcome = result.outcome === 'duplicate' ? 'ignored' : result.outcome
      const text = outcomeText({ outcome, reason: result.reason ?? null, requestNumber: result.requestNumber ?? null })
      if (outcome === 'quarantined') setFlash(req, 'error', `Still ${text.charAt(0).toLowerCase()}${text.slice(1)}`)
      else setFlash(req, 'success', `Re-processed: ${text}.`)
    } catch (err) {
      if (!isAppError(err)) throw err
      if (err.code === 'inbound_mail_not_found') return notFound(reply)
      setFlash(req, 'error', err.message)
    }
    return reply.redirect(QUARANTINE_URL, 303)
  })

  app.get(`${QUARANTINE_URL}/:id/raw`, pre, async (req, reply) => {
    const id = positiveInt((req.params as { id: string }).id)
    if (!id) return notFound(reply)
    let raw
    try {
      raw = await requests.rawMail(id)
    } catch (err) {
      if (isAppError(err) && err.code.endsWith('_not_found')) return notFound(reply, err.message)
      throw err
    }
    // A download, never rendered: the raw mail is the sender's bytes.
    return reply
      .header('content-type', 'message/rfc822')
      .header('content-disposition', contentDisposition('attachment', raw.filename))
      .header('cache-control', 'no-store')
      .send(raw.content)
  })
}

function notFound(reply: FastifyReply, text = 'This message is not in the Email Audit.') {
  return reply.code(404).type('text/plain; charset=utf-8').send(text)
}
