import { html } from '../html.ts'
import type { Html } from '../html.ts'
import { field } from './layout.ts'
import type { ServerSummary } from '../../mailboxes/email-servers.ts'
import type { FieldErrors, ServerDirection, ServerFormInput } from '../../mailboxes/form.ts'
import type { PresetFormData } from '../../oauth/presets.ts'

const BASE = '/admin/support-channel/emails'

export function tabs(active: ServerDirection): Html {
  return html`<div class="tabs" role="tablist">
  <a role="tab" href="${BASE}" aria-selected="${active === 'incoming' ? 'true' : 'false'}">Incoming Email Servers</a>
  <a role="tab" href="${BASE}/outgoing" aria-selected="${active === 'outgoing' ? 'true' : 'false'}">Outgoing Email Servers</a>
</div>`
}

function when(ms: number | null): Html | string {
  if (!ms) return 'never'
  const d = new Date(ms)
  return html`<time datetime="${d.toISOString()}">${d.toISOString().replace('T', ' ').slice(0, 19)} UTC</time>`
}

export function serverList(direction: ServerDirection, servers: ServerSummary[], csrf: Html): Html {
  const label = direction === 'incoming' ? 'Incoming' : 'Outgoing'
  return html`<h1>Emails</h1>
${tabs(direction)}
<div class="toolbar">
  <p>${direction === 'incoming' ? 'Mail that arrives in these mailboxes becomes requests.' : 'Replies and notifications go out through these servers.'}</p>
  <a class="button primary" href="${BASE}/${direction}/new">Add ${label} Email Server</a>
</div>
${servers.length === 0
  ? html`<p class="card">No ${label.toLowerCase()} email server yet.</p>`
  : html`<table class="list" aria-label="${label} Email Servers">
<thead><tr><th>Name</th><th>Email Address</th><th>Protocol</th><th>Status</th><th>Last Sync</th><th>Actions</th></tr></thead>
<tbody>
${servers.map(
  (s) => html`<tr data-server-id="${s.id}">
  <td>${s.name}${s.isDefault && direction === 'outgoing' ? html` <small>(default)</small>` : ''}</td>
  <td>${s.emailAddress}${s.account && s.account !== s.emailAddress ? html`<br><small>signed in as ${s.account}</small>` : ''}</td>
  <td>${s.protocol.toUpperCase()} · ${s.host}:${s.port}</td>
  <td><span class="status status-${s.status}">${s.statusLabel}</span>${s.statusMessage ? html`<br><small class="status-message">${s.statusMessage}</small>` : ''}</td>
  <td>${when(s.lastSyncAt)}</td>
  <td class="actions">
    <a href="${BASE}/servers/${s.id}/edit">Edit</a>
    <form method="post" action="${BASE}/servers/${s.id}/test">${csrf}<button type="submit">${direction === 'outgoing' ? 'Test Connection' : 'Test Connection'}</button></form>
    ${s.authType === 'oauth2' ? html`<form method="post" action="${BASE}/servers/${s.id}/reconnect">${csrf}<button type="submit" class="${s.status === 'needs_reauthorization' ? 'primary' : ''}">Reconnect</button></form>` : ''}
    ${direction === 'outgoing' ? html`<a href="${BASE}/servers/${s.id}/send-test">Send Test Email</a>` : ''}
    ${direction === 'incoming' ? html`<a href="/admin/support-channel/email-audit?server=${s.id}">Email Audit</a> <a href="/admin/support-channel/quarantine?server=${s.id}">Quarantine</a>` : ''}
    <form method="post" action="${BASE}/servers/${s.id}/${s.enabled ? 'disable' : 'enable'}">${csrf}<button type="submit">${s.enabled ? 'Disable' : 'Enable'}</button></form>
    <form method="post" action="${BASE}/servers/${s.id}/delete">${csrf}<button type="submit" class="danger">Delete</button></form>
  </td>
</tr>`,
)}
</tbody></table>`}`
}

function select(opts: { label: string; name: string; value: string; options: Array<[string, string]>; error?: string; hint?: string | Html }): Html {
  const id = `f-${opts.name}`
  return html`<div class="field${opts.error ? ' has-error' : ''}">
  <label for="${id}">${opts.label}</label>
  <select id="${id}" name="${opts.name}"${opts.error ? html` aria-invalid="true" aria-describedby="${id}-error"` : ''}>
    ${opts.options.map(([v, l]) => html`<option value="${v}"${v === opts.value ? html` selected` : ''}>${l}</option>`)}
  </select>
  ${opts.hint ? html`<small class="hint">${opts.hint}</small>` : ''}
  ${opts.error ? html`<span class="field-error" id="${id}-error">${opts.error}</span>` : ''}
</div>`
}

export interface ServerFormPage {
  direction: ServerDirection
  mode: 'new' | 'edit'
  serverId?: number
  input: ServerFormInput
  errors: FieldErrors & { client_json?: string }
  presets: PresetFormData[]
  redirectUri: string
  csrf: Html
  clientSecretSet?: boolean
  passwordSet?: boolean
  incomingServers: Array<{ id: number; name: string; emailAddress: string }>
  outgoingServers: Array<{ id: number; name: string }>
  notice?: string
}

export function serverForm(p: ServerFormPage): Html {
  const v = p.input
  const e = p.errors
  const incoming = p.direction === 'incoming'
  const title = p.mode === 'new' ? `Add ${incoming ? 'Incoming' : 'Outgoing'} Email Server` : `Edit ${v.name ?? 'Email Server'}`
  const action = p.mode === 'new' ? `${BASE}/${p.direction}/new` : `${BASE}/servers/${p.serverId}/edit`
  const authType = v.auth_type || 'oauth2'
  return html`<h1>${title}</h1>
${tabs(p.direction)}
${Object.keys(e).length ? html`<div class="flash flash-error" role="alert">Some fields need attention: see the messages beside them.</div>` : ''}
${p.notice ? html`<div class="flash flash-info" role="status">${p.notice}</div>` : ''}
<form method="post" action="${action}" class="card server-form" id="server-form" data-presets="${JSON.stringify(p.presets)}" data-direction="${p.direction}" novalidate>
  ${p.csrf}
  <fieldset><legend>Mailbox</legend>
  ${field({ label: 'Name', name: 'name', value: v.name, required: true, error: e.name })}
  ${field({ label: incoming ? 'Email Address' : 'From Address', name: 'email_address', type: 'email', value: v.email_address, required: true, error: e.email_address })}
  ${!incoming ? field({ label: 'Display Name', name: 'display_name', value: v.display_name, error: e.display_name, hint: 'Shown as the sender name, e.g. "Example Support".' }) : ''}
  ${incoming ? select({ label: 'Protocol', name: 'protocol', value: v.protocol || 'imap', options: [['imap', 'IMAP'], ['pop3', 'POP3']], error: e.protocol }) : html`<input type="hidden" name="protocol" value="smtp">`}
  ${field({ label: 'Host', name: 'host', value: v.host, required: true, error: e.host })}
  ${field({ label: 'Port', name: 'port', type: 'number', value: v.port, required: true, error: e.port })}
  ${select({ label: 'Security', name: 'security', value: v.security || 'tls', options: [['tls', 'SSL/TLS'], ['starttls', 'STARTTLS'], ['none', 'None']], error: e.security })}
  ${incoming ? field({ label: 'Folder', name: 'folder', value: v.folder || 'INBOX', error: e.folder, hint: 'IMAP only.' }) : ''}
  </fieldset>

  <fieldset><legend>Authentication</legend>
  ${select({ label: 'Authentication', name: 'auth_type', value: authType, options: [['oauth2', 'OAuth 2.0'], ['password', 'Password']], error: e.auth_type })}
  ${!incoming && p.incomingServers.length
    ? select({
        label: 'Use the authorization of',
        name: 'use_incoming_authorization',
        value: v.use_incoming_authorization ?? '',
        options: [['', 'None: authorize this server separately'], ...p.incomingServers.map((s) => [String(s.id), `${s.name} (${s.emailAddress})`] as [string, string])],
        error: e.use_incoming_authorization,
        hint: 'Gmail\'s scope covers sending too; for Microsoft the incoming server needs the SMTP.Send scope as well.',
      })
    : ''}
  <div class="oauth-fields" data-auth="oauth2">
    ${select({
      label: 'Provider',
      name: 'provider',
      value: v.provider || 'gmail',
      options: p.presets.map((x) => [x.id, x.label] as [string, string]),
      error: e.provider,
      hint: 'Fills Authorization Url, Token Url, Scope, Host, Port and Security.',
    })}
    <div class="tenant-field" data-provider-only="microsoft365">
    ${field({ label: 'Tenant', name: 'tenant', value: v.tenant || 'common', error: e.tenant, hint: 'Microsoft 365 only: common, organizations, your tenant ID or your domain. Fills the two URLs.' })}
    </div>
    <div class="redirect-uri card">
      <strong>Redirect URI</strong>
      <p><code id="redirect-uri">${p.redirectUri}</code> <button type="button" class="copy" data-copy="#redirect-uri">Copy</button></p>
      <p>Add this under Authorised redirect URIs of your OAuth client (Google Cloud console > Clients; Microsoft Entra > App registrations > Authentication). It must match exactly.</p>
    </div>
    ${incoming || true
      ? html`<div class="field${e.client_json ? ' has-error' : ''}">
      <label for="f-client_json_file">Google client JSON</label>
      <input id="f-client_json_file" type="file" accept=".json,application/json" data-fills="#f-client_json">
      <textarea id="f-client_json" name="client_json" rows="3" placeholder='Or paste the JSON downloaded from the Google console: {"web":{"client_id":...}}'></textarea>
      <button type="submit" name="action" value="import" id="import-json">Fill from JSON</button>
      <small class="hint">Fills Client ID, Client Secret, Authorization Url and Token Url.</small>
      ${e.client_json ? html`<span class="field-error" id="f-client_json-error">${e.client_json}</span>` : ''}
    </div>`
      : ''}
    ${field({ label: 'Client ID', name: 'client_id', value: v.client_id, error: e.client_id })}
    ${field({
      label: 'Client Secret',
      name: 'client_secret',
      type: 'password',
      value: '',
      error: e.client_secret,
      hint: p.clientSecretSet ? 'A secret is set. Leave empty to keep it.' : undefined,
      attrs: html`autocomplete="off"`,
    })}
    ${field({ label: 'Authorization Url', name: 'authorization_url', type: 'url', value: v.authorization_url, error: e.authorization_url })}
    ${field({ label: 'Token Url', name: 'token_url', type: 'url', value: v.token_url, error: e.token_url })}
    ${field({ label: 'Scope', name: 'scope', value: v.scope, error: e.scope, hint: 'Space-separated.' })}
    ${field({ label: 'Revocation Url', name: 'revocation_url', type: 'url', value: v.revocation_url, error: e.revocation_url, hint: 'Optional (RFC 7009). Used to revoke access when the server is deleted; Microsoft has none.' })}
  </div>
  <div class="password-fields" data-auth="password">
    ${field({ label: 'Username', name: 'username', value: v.username, error: e.username, hint: 'Leave empty to use the email address.' })}
    ${field({ label: 'Password', name: 'password', type: 'password', value: '', error: e.password, hint: p.passwordSet ? 'A password is set. Leave empty to keep it.' : undefined, attrs: html`autocomplete="off"` })}
  </div>
  </fieldset>

  ${incoming
    ? html`<fieldset><legend>Processing</legend>
  ${select({ label: 'After fetching', name: 'ack_action', value: v.ack_action || 'leave', options: [['leave', 'Leave on the server'], ['seen', 'Mark as read (IMAP)'], ['move', 'Move to a folder (IMAP)'], ['delete', 'Delete from the server']], error: e.ack_action, hint: 'Done only after the request is saved.' })}
  ${field({ label: 'Move to folder', name: 'ack_folder', value: v.ack_folder, error: e.ack_folder })}
  ${field({ label: 'Poll interval (seconds)', name: 'poll_interval_seconds', type: 'number', value: v.poll_interval_seconds || '60', error: e.poll_interval_seconds, hint: 'POP3 and IMAP servers without IDLE; IMAP with IDLE gets mail pushed.' })}
  ${select({ label: 'Replies go through', name: 'outgoing_server_id', value: v.outgoing_server_id ?? '', options: [['', 'The default outgoing server'], ...p.outgoingServers.map((s) => [String(s.id), s.name] as [string, string])], error: e.outgoing_server_id })}
  <div class="field"><label><input type="checkbox" name="auto_ack_enabled"${v.auto_ack_enabled === 'on' || v.auto_ack_enabled === 'true' ? html` checked` : ''}> Acknowledge new requests automatically</label></div>
  ${field({ label: 'Acknowledgement subject', name: 'auto_ack_subject', value: v.auto_ack_subject, hint: 'Default: "We received your request". The request number is added.' })}
  <div class="field"><label for="f-auto_ack_body">Acknowledgement text</label><textarea id="f-auto_ack_body" name="auto_ack_body" rows="4">${v.auto_ack_body ?? ''}</textarea><small class="hint">{{number}} and {{subject}} are replaced.</small></div>
</fieldset>`
    : html`<div class="field"><label><input type="checkbox" name="is_default"${v.is_default === 'on' || v.is_default === 'true' ? html` checked` : ''}> Default outgoing server</label></div>`}

  <div class="form-actions">
    <button type="submit" class="primary" name="action" value="save">Save</button>
    <a href="${BASE}${incoming ? '' : '/outgoing'}">Cancel</a>
  </div>
  <p class="hint">With OAuth 2.0, Save takes you to the provider to sign in as the mailbox and allow access.</p>
</form>`
}

/** Between Save and the provider: a plain link and a meta refresh (not subject to CSP form-action). */
export function redirectToProvider(url: string, providerHost: string): Html {
  return html`<section class="card narrow">
  <h1>Sign in at ${providerHost}</h1>
  <p>deskmail is sending you to ${providerHost} to sign in as the mailbox and allow access.</p>
  <p><a class="button primary" id="continue-to-provider" href="${url}">Continue to ${providerHost}</a></p>
</section>`
}

export function confirmDelete(server: ServerSummary, sharing: Array<{ id: number; name: string }>, csrf: Html): Html {
  return html`<section class="card narrow">
  <h1>Delete ${server.name}?</h1>
  ${server.authType === 'oauth2'
    ? html`<p>deskmail will revoke its authorization at the provider where the provider allows it, and delete the stored tokens.</p>`
    : ''}
  ${sharing.length
    ? html`<p class="flash flash-error" role="alert">Warning: ${sharing.map((s) => s.name).join(', ')} ${sharing.length === 1 ? 'uses' : 'use'} the same OAuth client and account. Revoking at Google revokes the grant for all of them: they will need Reconnect.</p>`
    : ''}
  <form method="post" action="/admin/support-channel/emails/servers/${server.id}/delete">
    ${csrf}
    <input type="hidden" name="confirm" value="yes">
    <button type="submit" class="danger">Delete ${server.name}</button>
    <a href="/admin/support-channel/emails${server.direction === 'outgoing' ? '/outgoing' : ''}">Cancel</a>
  </form>
</section>`
}
