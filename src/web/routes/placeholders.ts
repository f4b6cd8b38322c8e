import type { FastifyInstance } from 'fastify'
import { html } from '../html.ts'
import { sendPage } from '../render.ts'

/** Pages whose feature modules are not wired yet: present in the navigation, honest about it. */
export async function placeholderRoutes(app: FastifyInstance) {
  const routes: Array<[string, string, 'requests' | 'admin', boolean]> = [
    ['/admin/support-channel/emails', 'Emails', 'admin', true],
  ]
  for (const [url, title, section, admin] of routes) {
    if (app.hasRoute({ method: 'GET', url })) continue
    app.get(url, { preHandler: admin ? app.requireAdmin : app.requireUser }, async (req, reply) =>
      sendPage(req, reply, { title, section }, html`<h1>${title}</h1><p>Nothing here yet.</p>`),
    )
  }
}
