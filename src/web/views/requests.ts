import { html } from '../html.ts'
import type { Html } from '../html.ts'
import { messageFlagLabels, requestStatusLabels, requestStatuses } from '../../requests/types.ts'
import type { Page, RequestDetail, RequestMessage, RequestStatus, RequestSummary } from '../../requests/types.ts'

export function when(ms: number | null): Html | string {
  if (!ms) return 'never'
  const d = new Date(ms)
  return html`<time datetime="${d.toISOString()}">${d.toISOString().replace('T', ' ').slice(0, 19)} UTC</time>`
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KB`
  return `${(bytes / 1048576).toFixed(1)} MB`
}

function person(p: { email?: string; address?: string; name: string | null } | null): Html | string {
  if (!p) return html`<span class="muted">unknown sender</span>`
  const address = p.email ?? p.address ?? ''
  return p.name ? html`${p.name} <small>&lt;${address}&gt;</small>` : address
}

export function selectField(opts: { label: string; name: string; value: string; options: Array<[string, string]>; id?: string }): Html {
  const id = opts.id ?? `f-${opts.name}`
  return html`<div class="field">
  <label for="${id}">${opts.label}</label>
  <select id="${id}" name="${opts.name}">
    ${opts.options.map(([v, l]) => html`<option value="${v}"${v === opts.value ? html` selected` : ''}>${l}</option>`)}
  </select>
</div>`
}

/** Previous / Next links that keep the current filters. */
export function pager(page: Page<unknown>, base: string, params: Record<string, string | number | undefined>): Html {
  const pages = Math.max(1, Math.ceil(page.total / page.pageSize))
  const link = (p: number) => {
    const q = new URLSearchParams()
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v))
    if (p > 1) q.set('page', String(p))
    const s = q.toString()
    return s ? `${base}?${s}` : base
  }
  if (pages <= 1) return html`<p class="pager">${page.total} in total</p>`
  return html`<nav class="pager" aria-label="Pages">
  ${page.page > 1 ? html`<a href="${link(page.page - 1)}" rel="prev">Previous</a>` : ''}
  <span>Page ${page.page} of ${pages} (${page.total} in total)</span>
  ${page.page < pages ? html`<a href="${link(page.page + 1)}" rel="next">Next</a>` : ''}
</nav>`
}

export interface RequestListPage {
  page: Page<RequestSummary>
  servers: Array<{ id: number; name: string }>
  filter: { server?: number; status?: RequestStatus }
}

/** The agent's list of requests, newest activity first. */
export function requestList(p: RequestListPage): Html {
  const { page, servers, filter } = p
  return html`<h1>Requests</h1>
<form method="get" action="/requests" class="inline filters" aria-label="Filter requests">
  ${selectField({
    label: 'Mailbox',
    name: 'server',
    value: filter.server ? String(filter.server) : '',
    options: [['', 'All mailboxes'], ...servers.map((s): [string, string] => [String(s.id), s.name])],
  })}
  ${selectField({
    label: 'Status',
    name: 'status',
    value: filter.status ?? '',
    options: [['', 'All statuses'], ...requestStatuses.map((s): [string, string] => [s, requestStatusLabels[s]])],
  })}
  <button type="submit">Filter</button>
</form>
${page.items.length === 0
  ? html`<p class="card">No requests${filter.server || filter.status ? ' match these filters' : ' yet: mail that arrives in a connected mailbox appears here'}.</p>`
  : html`<table class="list requests" aria-label="Requests">
<thead><tr><th>Number</th><th>Subject</th><th>Requester</th><th>Status</th><th>Last Activity</th></tr></thead>
<tbody>
${page.items.map(
  (r) => html`<tr data-request-id="${r.id}">
  <td><a href="/requests/${r.id}">#${r.number}</a></td>
  <td><a href="/requests/${r.id}">${r.subject}</a>${r.isBulk ? html` <span class="badge">Bulk</span>` : ''} <small class="muted">(${r.messageCount} message${r.messageCount === 1 ? '' : 's'})</small></td>
  <td>${person(r.requester)}</td>
  <td><span class="request-status request-status-${r.status}">${requestStatusLabels[r.status]}</span></td>
  <td>${when(r.lastActivityAt)}</td>
</tr>`,
)}
</tbody></table>`}
${pager(page, '/requests', { server: filter.server, status: filter.status })}`
}

export interface RequestPageOptions {
  csrf: Html
  /** The CSRF token itself, for the multipart reply form's action URL. */
  csrfToken: string
  /** The message whose remote images the agent asked to see. */
  remoteImagesFor?: number
  /** Delivery state of outbound messages (rendered by the outbox's badge), by message row id. */
  outboundStatus?: Map<number, Html>
}

function flags(m: RequestMessage): Html {
  return html`${m.flags.map((f) => html` <span class="badge badge-${f}">${messageFlagLabels[f]}</span>`)}`
}

function messageView(r: RequestDetail, m: RequestMessage, o: RequestPageOptions): Html {
  const showRemote = o.remoteImagesFor === m.id
  const bodyUrl = `/requests/${r.id}/messages/${m.id}/body${showRemote ? '?images=remote' : ''}`
  const listed = m.attachments.filter((a) => !a.inline)
  const text = m.textBody ?? ''
  return html`<article class="card message message-${m.direction}" id="message-${m.id}" data-message-id="${m.id}">
  <header class="message-head">
    <strong>${m.from ? person({ address: m.from.address, name: m.from.name || null }) : m.direction === 'outbound' ? 'deskmail' : person(null)}</strong>
    ${m.direction === 'outbound' ? html` <span class="badge">Sent by an agent</span>` : ''}${flags(m)}
    <span class="message-date">${when(m.createdAt)}</span>
  </header>
  <dl class="message-meta">
    ${m.to ? html`<dt>To</dt><dd>${m.to}</dd>` : ''}
    ${m.cc ? html`<dt>Cc</dt><dd>${m.cc}</dd>` : ''}
    <dt>Subject</dt><dd>${m.subject ?? '(no subject)'}</dd>
  </dl>
  ${m.direction === 'outbound'
    ? html`<p class="delivery">${m.deliveryStatus === 'bounced'
        ? html`<span class="status status-error">Bounced</span>${m.deliveryError ? html` <small class="status-message">${m.deliveryError}</small>` : ''}`
        : (o.outboundStatus?.get(m.id) ?? html`<span class="status">${m.deliveryStatus}</span>`)}</p>`
    : ''}
  ${m.hasHtml
    ? html`<iframe sandbox class="mail-body" src="${bodyUrl}" title="Message from ${m.from?.address ?? 'unknown sender'}" loading="lazy"></iframe>
  ${m.remoteImages > 0 && !showRemote
    ? html`<p class="remote-images">${m.remoteImages} remote image${m.remoteImages === 1 ? ' was' : 's were'} blocked (they tell the sender that and when the mail was read). <a href="/requests/${r.id}?remoteImages=${m.id}#message-${m.id}">Show remote images</a></p>`
    : ''}
  ${text ? html`<details class="plain-text"><summary>Plain text</summary><pre class="mail-text">${text}</pre></details>` : ''}`
    : html`<pre class="mail-text">${text || '(no text)'}</pre>`}
  ${listed.length
    ? html`<ul class="attachments" aria-label="Attachments">
    ${listed.map((a) => html`<li><a href="/requests/${r.id}/attachments/${a.id}" download="${a.filename}">${a.filename}</a> <small>${a.contentType}, ${formatSize(a.size)}</small></li>`)}
  </ul>`
    : ''}
</article>`
}

/** A request: its conversation, its status, and the reply form (the reply itself is the outbox's). */
export function requestPage(r: RequestDetail, o: RequestPageOptions): Html {
  return html`<p><a href="/requests">← Requests</a></p>
<h1><span class="request-number">#${r.number}</span> ${r.subject}</h1>
<p class="request-meta">${r.requester ? html`From ${person(r.requester)}` : 'No sender address'}${r.serverName ? html` · via ${r.serverName}` : ''} · opened ${when(r.createdAt)} · ${r.messages.length} message${r.messages.length === 1 ? '' : 's'}${r.isBulk ? html` · <span class="badge">Bulk</span> (no automatic mail)` : ''}</p>
<form method="post" action="/requests/${r.id}/status" class="inline request-status-form">
  ${o.csrf}
  ${selectField({ label: 'Status', name: 'status', value: r.status, options: requestStatuses.map((s): [string, string] => [s, requestStatusLabels[s]]) })}
  <button type="submit">Update Status</button>
</form>
<section class="conversation" aria-label="Conversation">
${r.messages.map((m) => messageView(r, m, o))}
</section>
<section class="card reply-box">
<form method="post" action="/requests/${r.id}/replies?_csrf=${encodeURIComponent(o.csrfToken)}" enctype="multipart/form-data">
  ${o.csrf}
  <div class="field">
    <label for="reply-body">Reply</label>
    <textarea id="reply-body" name="body" rows="8"></textarea>
  </div>
  <div class="field">
    <label for="reply-attachments">Attachments</label>
    <input id="reply-attachments" type="file" name="attachments" multiple>
  </div>
  <button type="submit" class="primary">Send Reply</button>
</form>
</section>`
}

/** The HTML document the sandboxed iframe loads: the sanitized body and nothing else. */
export function mailBodyDocument(sanitizedHtml: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><style>body{font:14px/1.45 system-ui,sans-serif;margin:.5rem;word-wrap:break-word}img{max-width:100%;height:auto}</style></head><body>${sanitizedHtml}</body></html>`
}

/** Styles of the request and audit pages (the portal's CSP allows only same-origin stylesheets). */
export const requestStyles = `
.filters { flex-wrap: wrap; margin-bottom: 1rem; }
.muted { color: var(--muted); }
.badge { display: inline-block; font-size: .75rem; padding: .05rem .4rem; border-radius: 999px; background: #eef1f6; color: var(--muted); vertical-align: middle; }
.badge-auto-reply, .badge-bounce { background: #fff4e5; color: var(--warn); }
.request-status { font-weight: 600; }
.request-status-open { color: var(--accent); }
.request-status-pending { color: var(--warn); }
.request-status-resolved { color: var(--ok); }
.request-status-closed { color: var(--muted); }
.request-meta { color: var(--muted); }
.request-status-form { margin-bottom: 1rem; }
.message-outbound { border-left: 3px solid var(--accent); }
.message-head { display: flex; gap: .5rem; align-items: baseline; flex-wrap: wrap; }
.message-date { margin-left: auto; color: var(--muted); font-size: .875rem; }
.message-meta { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .75rem; margin: .5rem 0; font-size: .875rem; color: var(--muted); }
.message-meta dd { margin: 0; overflow-wrap: anywhere; }
.mail-text { white-space: pre-wrap; overflow-wrap: anywhere; font: inherit; margin: .5rem 0; }
iframe.mail-body { height: 24rem; resize: vertical; overflow: auto; }
.attachments { margin: .5rem 0 0; padding-left: 1.2rem; }
.remote-images { font-size: .875rem; color: var(--muted); }
.pager { display: flex; gap: 1rem; align-items: center; margin-top: 1rem; color: var(--muted); }
.reply-box textarea { min-height: 8rem; }
.audit td { overflow-wrap: anywhere; }
.server-mail-status { margin-bottom: 1rem; }
.outcome-quarantined { color: var(--bad); }
.outcome-ignored { color: var(--muted); }
`
