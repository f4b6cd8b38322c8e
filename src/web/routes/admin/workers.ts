import type { FastifyInstance } from 'fastify'
import { html } from '../../html.ts'
import { sendPage } from '../../render.ts'
import { LeaseManager } from '../../../mailboxes/leases.ts'
import { WorkerRegistry } from '../../../mailboxes/worker-registry.ts'

function when(ms: number | null | undefined) {
  if (!ms) return html`<span class="hint">never</span>`
  const d = new Date(ms)
  return html`<time datetime="${d.toISOString()}">${d.toISOString().replace('T', ' ').slice(0, 19)} UTC</time>`
}

function ago(ms: number, now: number): string {
  const s = Math.round((now - ms) / 1000)
  return s < 0 ? `in ${-s} s` : `${s} s ago`
}

/**
 * Admin > System > Workers: the worker processes (heartbeat, mailboxes held) and, per incoming
 * mailbox, which worker holds its lease and until when. Read-only: leases move by themselves.
 */
export async function workerRoutes(app: FastifyInstance) {
  const { storage, config } = app.services
  const leaseMs = config.leaseSeconds * 1000
  const leases = new LeaseManager(storage.db, storage.caps, { leaseMs })
  const registry = new WorkerRegistry(storage.db, { staleMs: leaseMs })

  app.get('/admin/workers', { preHandler: app.requireAdmin }, async (req, reply) => {
    const [workers, mailboxes] = await Promise.all([registry.list(), leases.list()])
    const now = Date.now()
    const heldBy = new Map<string, number>()
    for (const m of mailboxes) if (m.owner && m.expiresAt > now) heldBy.set(m.owner, (heldBy.get(m.owner) ?? 0) + 1)
    const workerState = (w: (typeof workers)[number]) =>
      w.stopping ? 'Stopping' : w.heartbeat_at > now - leaseMs ? 'Live' : 'Silent (its leases expire and move to other workers)'
    return sendPage(
      req,
      reply,
      { title: 'Workers', section: 'admin' },
      html`<h1>Workers</h1>
<p class="hint">Each mailbox is synced by one worker at a time, under a lease renewed every ${config.heartbeatSeconds} s and valid for ${config.leaseSeconds} s. When a worker stops answering, its mailboxes move to the others once their leases expire.</p>
<table class="list" id="workers">
<thead><tr><th>Worker</th><th>Host</th><th>PID</th><th>Started</th><th>Last heartbeat</th><th>Mailboxes held</th><th>Concurrency</th><th>State</th></tr></thead>
<tbody>
${workers.length
  ? workers.map(
      (w) => html`<tr data-worker-id="${w.id}">
  <td><code>${w.id}</code></td><td>${w.host}</td><td>${w.pid}</td><td>${when(w.started_at)}</td>
  <td>${when(w.heartbeat_at)} <span class="hint">(${ago(w.heartbeat_at, now)})</span></td>
  <td>${heldBy.get(w.id) ?? 0}</td><td>${w.concurrency}</td><td>${workerState(w)}</td>
</tr>`,
    )
  : html`<tr><td colspan="8">No worker is running. Start one with <code>deskmail serve</code> or <code>deskmail worker</code>.</td></tr>`}
</tbody>
</table>
<h2>Mailboxes</h2>
<table class="list" id="leases">
<thead><tr><th>Mailbox</th><th>Protocol</th><th>Held by</th><th>Lease expires</th><th>Epoch</th></tr></thead>
<tbody>
${mailboxes.map(
  (m) => html`<tr data-server-id="${m.serverId}">
  <td>${m.serverName} <span class="hint">${m.emailAddress}</span></td>
  <td>${m.protocol.toUpperCase()}</td>
  <td>${!m.enabled ? html`<span class="hint">disabled</span>` : m.owner && m.expiresAt > now ? html`<code>${m.owner}</code>` : m.owner ? html`<span class="status status-degraded">expired (was <code>${m.owner}</code>)</span>` : html`<span class="hint">waiting for a worker</span>`}</td>
  <td>${m.owner ? html`${when(m.expiresAt)} <span class="hint">(${ago(m.expiresAt, now)})</span>` : ''}</td>
  <td>${m.epoch}</td>
</tr>`,
)}
</tbody>
</table>`,
    )
  })
}
