import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { html } from '../../html.ts'
import type { Html } from '../../html.ts'
import { csrfField, sendPage } from '../../render.ts'
import { field } from '../../views/layout.ts'
import { tabs } from '../../views/email-servers.ts'
import { isAppError } from '../../../shared/errors.ts'
import type { OutboxSummary } from '../../../outbox/outbox.ts'
import type { OutboxStatus } from '../../../storage/schema.ts'
import { outboxStatusBadge } from '../replies.ts'

const BASE = '/admin/support-channel/emails'

/** How long the Send Test Email page waits for the server's answer. */
const TEST_WAIT_MS = 15_000

/**
 * **Send Test Email** on the Outgoing Email Servers tab: sends a real message through the outbox
 * (the same path replies take: compose, claim, SMTP with a fresh token) and shows the server's
 * answer on the page. And the admin's view of the outbox, with Send again.
 */
export async function sendTestRoutes(app: FastifyInstance) {
  const { emailServers, outbox } = app.services
  const pre = { preHandler: app.requireAdmin }

  const page = async (
    req: FastifyRequest,
    reply: FastifyReply,
    serverId: number,
    opts: { to?: string; error?: string; result?: OutboxSummary; status?: number },
  ) => {
    const server = await emailServers.summary(serverId)
    const recent = (await outbox.list({ kind: 'test', limit: 200 })).filter((i) => i.serverId === serverId).slice(0, 5)
    const csrf = csrfField(reply)
    return sendPage(
      req,
      reply,
      {
        title: `Send Test Email · ${server.name}`,
        section: 'admin',
        status: opts.status,
        flash: opts.result ? resultFlash(opts.result) : undefined,
      },
      html`<h1>Emails</h1>
${tabs('outgoing')}
<section class="card">
  <h2>Send Test Email</h2>
  <p>Sends a real message through <strong>${server.name}</strong> (${server.host}:${server.port}, from ${server.emailAddress})
  and shows what the server answered.</p>
  ${server.direction !== 'outgoing' ? html`<p class="field-error">This is not an outgoing server.</p>` : ''}
  <form method="post" action="${BASE}/servers/${server.id}/send-test" class="inline">
    ${csrf}
    ${field({ label: 'To', name: 'to', type: 'email', value: opts.to ?? req.user?.email ?? '', required: true, error: opts.error })}
    <button type="submit" class="primary">Send Test Email</button>
  </form>
</section>
${opts.result ? resultCard(opts.result, csrf) : ''}
${recent.length
  ? html`<h2>Recent test emails</h2>${outboxTable(recent, csrf)}`
  : ''}
<p><a href="${BASE}/outgoing">Back to Outgoing Email Servers</a></p>`,
    )
  }

  app.get(`${BASE}/servers/:id/send-test`, pre, async (req, reply) => page(req, reply, Number((req.params as { id: string }).id), {}))

  app.post(`${BASE}/servers/:id/send-test`, pre, async (req, reply) => {
    const serverId = Number((req.params as { id: string }).id)
    const to = String((req.body as { to?: unknown } | undefined)?.to ?? '').trim()
    let queued
    try {
      queued = await outbox.queueTest(serverId, to, { requestedBy: req.user?.email })
    } catch (err) {
      if (!isAppError(err) || err.code === 'server_not_found') throw err
      return page(req, reply, serverId, { to, error: err.message, status: 400 })
    }
    // Sent from this process right away; when a worker already claimed it, wait for its answer.
    const result = await outbox.deliverNow(queued.outboxId, TEST_WAIT_MS)
    return page(req, reply, serverId, { to, result })
  })

  app.get('/admin/support-channel/outbox', pre, async (req, reply) => {
    const wanted = String((req.query as { status?: string }).status ?? '')
    const statuses = (['queued', 'sending', 'sent', 'failed', 'waiting_authorization', 'uncertain'] as OutboxStatus[]).filter((s) => s === wanted)
    const items = await outbox.list({ statuses, limit: 200 })
    const csrf = csrfField(reply)
    return sendPage(
      req,
      reply,
      { title: 'Outbox', section: 'admin' },
      html`<h1>Outbox</h1>
<div class="toolbar"><p>Outgoing mail, newest first: replies, automatic acknowledgements and test emails, with what each server answered.</p>
<p><a href="/admin/support-channel/outbox">All</a> · <a href="?status=failed">Failed</a>
 · <a href="?status=uncertain">Outcome unknown</a> · <a href="?status=waiting_authorization">Waiting for authorization</a>
 · <a href="?status=queued">Queued</a></p></div>
${items.length ? outboxTable(items, csrf) : html`<p class="card">Nothing here.</p>`}`,
    )
  })
}

function resultFlash(r: OutboxSummary): { kind: 'success' | 'error' | 'info'; text: string } {
  if (r.status === 'sent') return { kind: 'success', text: `Test email sent to ${r.to.join(', ')}. The server answered: ${r.smtpResponse ?? 'OK'}` }
  if (r.status === 'queued' || r.status === 'sending') {
    const where = r.status === 'queued' ? 'queued' : 'being sent'
    return { kind: 'info', text: `The test email is still ${where}; this page shows its state below (reload to update).` }
  }
  return { kind: 'error', text: `The test email was not sent: ${r.lastError ?? r.statusLabel}` }
}

function resultCard(r: OutboxSummary, csrf: Html): Html {
  return html`<section class="card" id="send-test-result" data-status="${r.status}">
  <h2>Result</h2>
  <p>${outboxStatusBadge(r, csrf)}</p>
  ${r.smtpResponse ? html`<p>Server answer: <code id="smtp-response">${r.smtpResponse}</code></p>` : ''}
  <p><small>Message-ID: <code>&lt;${r.messageIdHeader}&gt;</code></small></p>
</section>`
}

function when(ms: number | null): string {
  return ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC' : ''
}

function outboxTable(items: OutboxSummary[], csrf: Html): Html {
  return html`<table class="list outbox" aria-label="Outgoing mail">
<thead><tr><th>Created</th><th>Kind</th><th>To</th><th>Server</th><th>Status</th><th>Request</th></tr></thead>
<tbody>
${items.map(
  (i) => html`<tr data-outbox-id="${i.id}">
  <td>${when(i.createdAt)}</td>
  <td>${i.kind === 'auto_ack' ? 'Acknowledgement' : i.kind === 'test' ? 'Test' : 'Reply'}</td>
  <td>${i.to.join(', ')}</td>
  <td>${i.serverName ?? '(deleted)'}</td>
  <td>${outboxStatusBadge(i, csrf)}</td>
  <td>${i.requestId ? html`<a href="/requests/${i.requestId}">Open</a>` : ''}</td>
</tr>`,
)}
</tbody></table>`
}
