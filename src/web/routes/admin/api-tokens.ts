import type { FastifyInstance } from 'fastify'
import { html } from '../../html.ts'
import { csrfField, sendPage } from '../../render.ts'
import { field } from '../../views/layout.ts'

export async function apiTokenRoutes(app: FastifyInstance) {
  const { apiTokens } = app.services
  const pre = { preHandler: app.requireAdmin }

  const render = async (req: any, reply: any, created?: string) => {
    const tokens = await apiTokens.list()
    return sendPage(
      req,
      reply,
      { title: 'API Tokens', section: 'admin' },
      html`<h1>API Tokens</h1>
${created
  ? html`<div class="card notice" role="status"><p>Copy this token now: it is shown only once.</p>
  <p><code id="new-token">${created}</code> <button type="button" class="copy" data-copy="#new-token">Copy</button></p></div>`
  : ''}
<section class="card">
<form method="post" action="/admin/api-tokens" class="inline">
  ${csrfField(reply)}
  ${field({ label: 'Name', name: 'name', required: true })}
  <button type="submit" class="primary">Create API Token</button>
</form>
</section>
<table class="list">
<thead><tr><th>Name</th><th>Prefix</th><th>Created</th><th>Last used</th><th>Status</th><th></th></tr></thead>
<tbody>
${tokens.map(
  (t) => html`<tr>
  <td>${t.name}</td><td><code>${t.token_prefix}…</code></td>
  <td>${new Date(t.created_at).toISOString()}</td>
  <td>${t.last_used_at ? new Date(t.last_used_at).toISOString() : 'never'}</td>
  <td>${t.revoked_at ? 'Revoked' : 'Active'}</td>
  <td>${t.revoked_at ? '' : html`<form method="post" action="/admin/api-tokens/${t.id}/revoke">${csrfField(reply)}<button type="submit">Revoke</button></form>`}</td>
</tr>`,
)}
</tbody>
</table>`,
    )
  }

  app.get('/admin/api-tokens', pre, async (req, reply) => render(req, reply))
  app.post('/admin/api-tokens', pre, async (req, reply) => {
    const { token } = await apiTokens.create(String((req.body as any).name ?? ''), req.user!.id)
    return render(req, reply, token)
  })
  app.post('/admin/api-tokens/:id/revoke', pre, async (req, reply) => {
    await apiTokens.revoke(Number((req.params as any).id))
    return reply.redirect('/admin/api-tokens', 303)
  })
}
