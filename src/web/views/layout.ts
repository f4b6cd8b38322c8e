import { html } from '../html.ts'
import type { Html } from '../html.ts'

export interface PageUser {
  email: string
  role: 'admin' | 'agent'
}

export interface LayoutOptions {
  title: string
  user?: PageUser
  csrfToken?: string
  /** Which navigation entry is active. */
  section?: 'requests' | 'admin'
  flash?: { kind: 'success' | 'error' | 'info'; text: string }
  /** Extra elements for <head> (e.g. a meta refresh). */
  head?: Html
}

export function layout(opts: LayoutOptions, body: Html): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${opts.title} · deskmail</title>
<link rel="stylesheet" href="/assets/app.css">
<script src="/assets/app.js" defer></script>
${opts.head ?? ''}
</head>
<body>
${opts.user
    ? html`<header class="topbar">
  <a class="brand" href="/requests">deskmail</a>
  <nav aria-label="Main">
    <a href="/requests" class="${opts.section === 'requests' ? 'active' : ''}">Requests</a>
    ${opts.user.role === 'admin'
      ? html`<details class="menu ${opts.section === 'admin' ? 'active' : ''}">
      <summary>Admin</summary>
      <div class="menu-panel">
        <span class="menu-heading">Support Channel</span>
        <a href="/admin/support-channel/emails">Emails</a>
        <a href="/admin/support-channel/email-audit">Email Audit</a>
        <a href="/admin/support-channel/outbox">Outbox</a>
        <span class="menu-heading">System</span>
        <a href="/admin/workers">Workers</a>
        <a href="/admin/api-tokens">API Tokens</a>
      </div>
    </details>`
      : ''}
  </nav>
  <form method="post" action="/logout" class="signout">
    <input type="hidden" name="_csrf" value="${opts.csrfToken ?? ''}">
    <span class="who">${opts.user.email}</span>
    <button type="submit">Sign out</button>
  </form>
</header>`
    : ''}
<main>
${opts.flash ? html`<div class="flash flash-${opts.flash.kind}" role="${opts.flash.kind === 'error' ? 'alert' : 'status'}">${opts.flash.text}</div>` : ''}
${body}
</main>
</body>
</html>`
}

/** A labelled form field with its error message beside it (and the typed value kept). */
export function field(opts: {
  label: string
  name: string
  value?: string | number | null
  type?: string
  error?: string
  required?: boolean
  hint?: string | Html
  attrs?: Html
}): Html {
  const id = `f-${opts.name}`
  return html`<div class="field${opts.error ? ' has-error' : ''}">
  <label for="${id}">${opts.label}</label>
  <input id="${id}" name="${opts.name}" type="${opts.type ?? 'text'}" value="${opts.value ?? ''}"${opts.required ? html` required` : ''}${opts.error ? html` aria-invalid="true" aria-describedby="${id}-error"` : ''} ${opts.attrs ?? ''}>
  ${opts.hint ? html`<small class="hint">${opts.hint}</small>` : ''}
  ${opts.error ? html`<span class="field-error" id="${id}-error">${opts.error}</span>` : ''}
</div>`
}
