import type { FastifyReply, FastifyRequest } from 'fastify'
import { escapeHtml, raw } from './html.ts'
import type { Html } from './html.ts'
import { layout } from './views/layout.ts'
import type { LayoutOptions } from './views/layout.ts'
import { takeFlash } from './plugins/auth.ts'

/** Renders a portal page in the layout, with the signed-in user, a CSRF token and any flash message. */
export function sendPage(
  req: FastifyRequest,
  reply: FastifyReply,
  opts: Omit<LayoutOptions, 'user' | 'csrfToken'> & { status?: number },
  body: Html,
): FastifyReply {
  const csrfToken = reply.generateCsrf()
  const flash = opts.flash ?? takeFlash(req)
  const user = req.user ? { email: req.user.email, role: req.user.role } : undefined
  return reply
    .code(opts.status ?? 200)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(layout({ ...opts, flash, user, csrfToken }, body).value)
}

/** The CSRF token for forms inside a page body. */
export function csrfField(reply: FastifyReply): Html {
  // generateCsrf returns the same secret-bound token within one request.
  const token = reply.generateCsrf()
  return raw(`<input type="hidden" name="_csrf" value="${escapeHtml(token)}">`)
}
