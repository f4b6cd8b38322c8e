import { html } from '../html.ts'
import type { Html } from '../html.ts'
import type { AuditEntry, Page, ServerMailStats } from '../../requests/types.ts'
import type { InboundOutcome } from '../../storage/schema.ts'
import { pager, selectField, when, formatSize } from './requests.ts'

export const AUDIT_URL = '/admin/support-channel/email-audit'
export const QUARANTINE_URL = '/admin/support-channel/quarantine'

export const outcomeLabels: Record<InboundOutcome, string> = {
  new_request: 'New request',
  reply: 'Reply added',
  ignored: 'Ignored',
  quarantined: 'Quarantined',
  pending: 'Pending',
}

/** What became of a message, in words: "New request #12", "Reply added to #12", "Ignored: ...". */
export function outcomeText(e: Pick<AuditEntry, 'outcome' | 'reason' | 'requestNumber'>): string {
  switch (e.outcome) {
    case 'new_request':
      return e.requestNumber !== null ? `New request #${e.requestNumber}` : 'New request'
    case 'reply':
      return e.requestNumber !== null ? `Reply added to #${e.requestNumber}` : 'Reply added'
    case 'ignored':
      return `Ignored: ${e.reason ?? 'no reason recorded'}`
    case 'quarantined':
      return `Quarantined: ${e.reason ?? 'no reason recorded'}`
    default:
      return 'Pending'
  }
}

function outcomeCell(e: AuditEntry): Html {
  const text = outcomeText(e)
  const link = e.requestId !== null && (e.outcome === 'new_request' || e.outcome === 'reply')
  return html`<span class="outcome outcome-${e.outcome}">${link ? html`<a href="/requests/${e.requestId}${e.messageRowId ? `#message-${e.messageRowId}` : ''}">${text}</a>` : text}</span>${
    e.outcome === 'quarantined' ? html` <a href="${QUARANTINE_URL}?server=${e.serverId}">Quarantine</a>` : ''
  }${(e.outcome === 'new_request' || e.outcome === 'reply') && e.reason ? html`<br><small class="muted">${e.reason}</small>` : ''}`
}

function tabs(active: 'audit' | 'quarantine', quarantined: number): Html {
  return html`<div class="tabs" role="tablist">
  <a role="tab" href="${AUDIT_URL}" aria-selected="${active === 'audit' ? 'true' : 'false'}">Email Audit</a>
  <a role="tab" href="${QUARANTINE_URL}" aria-selected="${active === 'quarantine' ? 'true' : 'false'}">Quarantine${quarantined ? ` (${quarantined})` : ''}</a>
</div>`
}

export interface ServerRow {
  id: number
  name: string
  emailAddress: string
  statusLabel: string
  status: string
  statusMessage: string | null
  lastSyncAt: number | null
}

/** Per incoming server: its connection status and what arrived (the admin's "is mail flowing?"). */
function serverStatus(servers: ServerRow[], stats: ServerMailStats[]): Html {
  if (servers.length === 0) return html`<p class="card">No incoming email server yet. Add one under <a href="/admin/support-channel/emails">Emails</a>.</p>`
  const byId = new Map(stats.map((s) => [s.serverId, s]))
  return html`<table class="list server-mail-status" aria-label="Incoming mail per server">
<thead><tr><th>Mailbox</th><th>Status</th><th>Last Sync</th><th>Messages Today (UTC)</th><th>Last Received</th><th>Quarantined</th></tr></thead>
<tbody>
${servers.map((s) => {
  const st = byId.get(s.id)
  return html`<tr data-server-id="${s.id}">
  <td><a href="${AUDIT_URL}?server=${s.id}">${s.name}</a><br><small>${s.emailAddress}</small></td>
  <td><span class="status status-${s.status}">${s.statusLabel}</span>${s.statusMessage ? html`<br><small class="status-message">${s.statusMessage}</small>` : ''}</td>
  <td>${when(s.lastSyncAt)}</td>
  <td class="messages-today">${st?.messagesToday ?? 0}</td>
  <td>${when(st?.lastReceivedAt ?? null)}</td>
  <td>${st?.quarantined ? html`<a href="${QUARANTINE_URL}?server=${s.id}">${st.quarantined}</a>` : '0'}</td>
</tr>`
})}
</tbody></table>`
}

export interface AuditPage {
  page: Page<AuditEntry>
  servers: ServerRow[]
  stats: ServerMailStats[]
  filter: { server?: number; outcome?: InboundOutcome; messageId?: string; q?: string }
}

/** Admin > Support Channel > Email Audit: every message received and what became of it. */
export function auditPage(p: AuditPage): Html {
  const { page, filter } = p
  const quarantined = p.stats.reduce((n, s) => n + s.quarantined, 0)
  return html`<h1>Email Audit</h1>
${tabs('audit', quarantined)}
${serverStatus(p.servers, p.stats)}
<form method="get" action="${AUDIT_URL}" class="inline filters" aria-label="Filter the Email Audit">
  ${selectField({ label: 'Mailbox', name: 'server', value: filter.server ? String(filter.server) : '', options: [['', 'All mailboxes'], ...p.servers.map((s): [string, string] => [String(s.id), s.name])] })}
  ${selectField({
    label: 'Outcome',
    name: 'outcome',
    value: filter.outcome ?? '',
    options: [['', 'All outcomes'], ...(['new_request', 'reply', 'ignored', 'quarantined'] as const).map((o): [string, string] => [o, outcomeLabels[o]])],
  })}
  <div class="field"><label for="f-message-id">Message-ID</label><input id="f-message-id" name="messageId" value="${filter.messageId ?? ''}" placeholder="abc@example.com"></div>
  <div class="field"><label for="f-q">Search</label><input id="f-q" name="q" type="search" value="${filter.q ?? ''}" placeholder="Sender or subject"></div>
  <button type="submit">Filter</button>
</form>
${page.items.length === 0
  ? html`<p class="card">No message received${filter.server || filter.outcome || filter.messageId || filter.q ? ' matches these filters' : ' yet'}.</p>`
  : html`<table class="list audit" aria-label="Email Audit">
<thead><tr><th>Received</th><th>Mailbox</th><th>Sender</th><th>Subject</th><th>Message-ID</th><th>Outcome</th></tr></thead>
<tbody>
${page.items.map(
  (e) => html`<tr data-inbound-id="${e.id}" data-outcome="${e.outcome}">
  <td>${when(e.receivedAt)}</td>
  <td>${e.serverName ?? `#${e.serverId}`}</td>
  <td>${e.sender ?? html`<span class="muted">none</span>`}</td>
  <td>${e.subject || html`<span class="muted">(no subject)</span>`}</td>
  <td>${e.messageIdHeader ? html`<code>${e.messageIdHeader}</code>` : html`<span class="muted">none</span>`}</td>
  <td>${outcomeCell(e)}</td>
</tr>`,
)}
</tbody></table>`}
${pager(page, AUDIT_URL, { server: filter.server, outcome: filter.outcome, messageId: filter.messageId, q: filter.q })}`
}

export interface QuarantinePage {
  page: Page<AuditEntry>
  servers: ServerRow[]
  stats: ServerMailStats[]
  filter: { server?: number }
  csrf: Html
}

/** Messages that could not be processed: the reason, the raw mail, and Re-process. */
export function quarantinePage(p: QuarantinePage): Html {
  const quarantined = p.stats.reduce((n, s) => n + s.quarantined, 0)
  return html`<h1>Quarantine</h1>
${tabs('quarantine', quarantined)}
<p>Messages that could not be processed are kept here with the reason; nothing is lost. Download the raw mail to look at it, and <strong>Re-process</strong> it once the cause is fixed.</p>
<form method="get" action="${QUARANTINE_URL}" class="inline filters" aria-label="Filter the quarantine">
  ${selectField({ label: 'Mailbox', name: 'server', value: p.filter.server ? String(p.filter.server) : '', options: [['', 'All mailboxes'], ...p.servers.map((s): [string, string] => [String(s.id), s.name])] })}
  <button type="submit">Filter</button>
</form>
${p.page.items.length === 0
  ? html`<p class="card">The quarantine is empty.</p>`
  : html`<table class="list audit quarantine" aria-label="Quarantine">
<thead><tr><th>Received</th><th>Mailbox</th><th>Reason</th><th>Sender</th><th>Subject</th><th>Actions</th></tr></thead>
<tbody>
${p.page.items.map(
  (e) => html`<tr data-inbound-id="${e.id}">
  <td>${when(e.receivedAt)}${e.attempts > 1 ? html`<br><small class="muted">${e.attempts} attempts</small>` : ''}</td>
  <td>${e.serverName ?? `#${e.serverId}`}</td>
  <td class="outcome-quarantined">${e.reason ?? 'no reason recorded'}</td>
  <td>${e.sender ?? html`<span class="muted">none</span>`}</td>
  <td>${e.subject || html`<span class="muted">(no subject)</span>`}</td>
  <td><div class="actions">
    <form method="post" action="${QUARANTINE_URL}/${e.id}/reprocess">${p.csrf}<button type="submit" class="primary">Re-process</button></form>
    <a href="${QUARANTINE_URL}/${e.id}/raw">Download .eml</a> <small>(${formatSize(e.size)})</small>
  </div></td>
</tr>`,
)}
</tbody></table>`}
${pager(p.page, QUARANTINE_URL, { server: p.filter.server })}`
}
