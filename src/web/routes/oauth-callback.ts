import type { FastifyInstance } from 'fastify'
import { html } from '../html.ts'
import { sendPage } from '../render.ts'
import { setFlash } from '../plugins/auth.ts'

/**
 * `GET /oauth/callback`: the one redirect URI registered at the providers. The pending
 * authorization found by `state` decides everything (server, token URL, verifier); nothing from
 * the request chooses an endpoint.
 */
export async function oauthCallbackRoutes(app: FastifyInstance) {
  const { mailboxAuthorization } = app.services
  app.get('/oauth/callback', async (req, reply) => {
    const url = new URL(req.url, app.services.config.baseUrl)
    const outcome = await mailboxAuthorization.complete(url, { userId: req.user?.id, sessionId: req.user ? req.session.get('sid') : undefined })
    if (outcome.serverId && req.user && outcome.code !== 'oauth_state_session_mismatch') {
      setFlash(req, outcome.ok ? 'success' : 'error', outcome.message)
      return reply.redirect(outcome.direction === 'outgoing' ? '/admin/support-channel/emails/outgoing' : '/admin/support-channel/emails', 303)
    }
    return sendPage(
      req,
      reply,
      { title: 'Authorization not completed', status: 400, flash: { kind: 'error', text: outcome.message } },
      html`<section class="card narrow"><h1>Authorization not completed</h1><p>${outcome.message}</p>
<p><a href="/admin/support-channel/emails">Back to Incoming Email Servers</a></p></section>`,
    )
  })
}
