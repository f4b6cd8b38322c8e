import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { html } from '../../html.ts'
import { csrfField, sendPage } from '../../render.ts'
import { setFlash } from '../../plugins/auth.ts'
import { confirmDelete, redirectToProvider, serverForm, serverList } from '../../views/email-servers.ts'
import type { ServerFormPage } from '../../views/email-servers.ts'
import { presetFormData } from '../../../oauth/presets.ts'
import { parseGoogleClientJson, checkRedirectUriRegistered } from '../../../oauth/google-client-json.ts'
import { isAppError } from '../../../shared/errors.ts'
import type { EmailServer } from '../../../storage/schema.ts'
import type { ServerDirection, ServerFormInput } from '../../../mailboxes/form.ts'

const BASE = '/admin/support-channel/emails'

/** Admin > Support Channel > Emails: the Incoming and Outgoing Email Servers tabs and their forms. */
export async function emailServerRoutes(app: FastifyInstance) {
  const { emailServers, mailboxAuthorization, config } = app.services
  const pre = { preHandler: app.requireAdmin }
  const listUrl = (d: ServerDirection) => (d === 'incoming' ? BASE : `${BASE}/outgoing`)

  const renderForm = async (req: FastifyRequest, reply: FastifyReply, p: Omit<ServerFormPage, 'presets' | 'redirectUri' | 'csrf' | 'incomingServers' | 'outgoingServers'>, status = 200) => {
    const all = await emailServers.list()
    return sendPage(
      req,
      reply,
      { title: p.mode === 'new' ? `Add ${p.direction === 'incoming' ? 'Incoming' : 'Outgoing'} Email Server` : 'Edit Email Server', section: 'admin', status },
      serverForm({
        ...p,
        presets: presetFormData(),
        redirectUri: config.redirectUri,
        csrf: csrfField(reply),
        incomingServers: all.filter((s) => s.direction === 'incoming' && s.credentialId && s.id !== p.serverId).map((s) => ({ id: s.id, name: s.name, emailAddress: s.emailAddress })),
        outgoingServers: all.filter((s) => s.direction === 'outgoing').map((s) => ({ id: s.id, name: s.name })),
      }),
    )
  }

  /** Sends the browser to the provider through a small page (see redirectToProvider). */
  const goAuthorize = async (req: FastifyRequest, reply: FastifyReply, serverId: number) => {
    const url = await mailboxAuthorization.start(serverId, { userId: req.user!.id, sessionId: req.session.get('sid')! })
    const host = new URL(url).host
    return sendPage(req, reply, { title: 'Sign in at the provider', section: 'admin', head: html`<meta http-equiv="refresh" content="0;url=${url}">` }, redirectToProvider(url, host))
  }

  for (const direction of ['incoming', 'outgoing'] as const) {
    app.get(listUrl(direction), pre, async (req, reply) =>
      sendPage(req, reply, { title: 'Emails', section: 'admin' }, serverList(direction, await emailServers.list(direction), csrfField(reply))),
    )

    app.get(`${BASE}/${direction}/new`, pre, async (req, reply) => {
      const preset = presetFormData()[0]!
      const proto = direction === 'incoming' ? 'imap' : 'smtp'
      return renderForm(req, reply, {
        direction,
        mode: 'new',
        errors: {},
        input: {
          provider: preset.id,
          protocol: proto,
          folder: 'INBOX',
          auth_type: 'oauth2',
          authorization_url: preset.authorizationUrl,
          token_url: preset.tokenUrl,
          revocation_url: preset.revocationUrl ?? '',
          scope: preset.scopes[proto],
          host: preset.hosts[proto]?.host,
          port: String(preset.hosts[proto]?.port ?? ''),
          security: preset.hosts[proto]?.security,
          poll_interval_seconds: '60',
        },
      })
    })

    app.post(`${BASE}/${direction}/new`, pre, async (req, reply) => {
      const input = req.body as ServerFormInput & { action?: string; client_json?: string }
      const imported = importClientJson(input, config.redirectUri)
      if (imported.error || input.action === 'import') {
        return renderForm(req, reply, { direction, mode: 'new', input, errors: imported.error ? { client_json: imported.error } : {}, notice: imported.notice }, imported.error ? 400 : 200)
      }
      const { values, errors } = await emailServers.validate(direction, input, false)
      if (!values) return renderForm(req, reply, { direction, mode: 'new', input, errors }, 400)
      const server = await emailServers.create(values)
      return afterSave(req, reply, server, true)
    })
  }

  const afterSave = async (req: FastifyRequest, reply: FastifyReply, server: EmailServer, reauthorize: boolean) => {
    if (server.auth_type === 'oauth2' && reauthorize) {
      const credential = await emailServers.credentialOf(server)
      // A server that borrows a connected incoming authorization needs no new consent.
      if (!(credential && credential.status === 'connected')) return goAuthorize(req, reply, server.id)
    }
    const result = await emailServers.testConnection(server.id)
    setFlash(req, result.ok ? 'success' : 'error', result.ok ? `${server.name} saved. ${result.message}` : `${server.name} saved, but the connection test failed: ${result.message}`)
    return reply.redirect(listUrl(server.direction), 303)
  }

  app.get(`${BASE}/servers/:id/edit`, pre, async (req, reply) => {
    const s = await emailServers.get(Number((req.params as any).id))
    const c = await emailServers.credentialOf(s)
    return renderForm(req, reply, {
      direction: s.direction,
      mode: 'edit',
      serverId: s.id,
      errors: {},
      clientSecretSet: Boolean(c?.client_secret_enc),
      passwordSet: Boolean(s.password_enc),
      input: {
        name: s.name,
        email_address: s.email_address,
        display_name: s.display_name ?? '',
        protocol: s.protocol,
        host: s.host,
        port: String(s.port),
        security: s.security,
        folder: s.folder,
        auth_type: s.auth_type,
        provider: c?.provider ?? 'custom',
        authorization_url: c?.authorization_url ?? '',
        token_url: c?.token_url ?? '',
        revocation_url: c?.revocation_url ?? '',
        scope: c?.scope ?? '',
        client_id: c?.client_id ?? '',
        username: s.username ?? '',
        poll_interval_seconds: String(s.poll_interval_seconds),
        ack_action: s.ack_action,
        ack_folder: s.ack_folder ?? '',
        outgoing_server_id: s.outgoing_server_id ? String(s.outgoing_server_id) : '',
        is_default: s.is_default ? 'on' : '',
        auto_ack_enabled: s.auto_ack_enabled ? 'on' : '',
        auto_ack_subject: s.auto_ack_subject ?? '',
        auto_ack_body: s.auto_ack_body ?? '',
      },
    })
  })

  app.post(`${BASE}/servers/:id/edit`, pre, async (req, reply) => {
    const s = await emailServers.get(Number((req.params as any).id))
    const c = await emailServers.credentialOf(s)
    const input = req.body as ServerFormInput & { action?: string; client_json?: string }
    const common = { direction: s.direction, mode: 'edit' as const, serverId: s.id, clientSecretSet: Boolean(c?.client_secret_enc), passwordSet: Boolean(s.password_enc) }
    const imported = importClientJson(input, config.redirectUri)
    if (imported.error || input.action === 'import') {
      return renderForm(req, reply, { ...common, input, errors: imported.error ? { client_json: imported.error } : {}, notice: imported.notice }, imported.error ? 400 : 200)
    }
    const { values, errors } = await emailServers.validate(s.direction, input, true)
    if (!values) return renderForm(req, reply, { ...common, input, errors }, 400)
    const { reauthorize } = await emailServers.update(s.id, values)
    return afterSave(req, reply, await emailServers.get(s.id), reauthorize)
  })

  app.post(`${BASE}/servers/:id/reconnect`, pre, async (req, reply) => goAuthorize(req, reply, Number((req.params as any).id)))

  app.post(`${BASE}/servers/:id/test`, pre, async (req, reply) => {
    const s = await emailServers.get(Number((req.params as any).id))
    const result = await emailServers.testConnection(s.id)
    setFlash(req, result.ok ? 'success' : 'error', `${s.name}: ${result.message}`)
    return reply.redirect(listUrl(s.direction), 303)
  })

  for (const [verb, enabled] of [['disable', false], ['enable', true]] as const) {
    app.post(`${BASE}/servers/:id/${verb}`, pre, async (req, reply) => {
      const s = await emailServers.get(Number((req.params as any).id))
      await emailServers.setEnabled(s.id, enabled)
      setFlash(req, 'success', `${s.name} is ${enabled ? 'enabled' : 'disabled'}.`)
      return reply.redirect(listUrl(s.direction), 303)
    })
  }

  app.post(`${BASE}/servers/:id/delete`, pre, async (req, reply) => {
    const id = Number((req.params as any).id)
    const summary = await emailServers.summary(id)
    if ((req.body as any)?.confirm !== 'yes') {
      const sharing = await emailServers.serversSharingGrant(id)
      return sendPage(req, reply, { title: `Delete ${summary.name}`, section: 'admin' }, confirmDelete(summary, sharing, csrfField(reply)))
    }
    const r = await emailServers.delete(id)
    setFlash(
      req,
      r.revokeError ? 'error' : 'success',
      r.revokeError
        ? `${summary.name} was deleted, but revoking at the provider failed (${r.revokeError}); revoke the app's access in the account's security settings.`
        : `${summary.name} was deleted${r.revoked ? ' and its authorization revoked at the provider' : ''}.`,
    )
    return reply.redirect(listUrl(summary.direction), 303)
  })
}

/**
 * "Fill from JSON": the Google console's client file fills Client ID, Client Secret and the two
 * URLs. A desktop ("installed") client is refused with the reason (PROVIDERS.md, Google).
 */
function importClientJson(input: ServerFormInput & { client_json?: string }, redirectUri: string): { error?: string; notice?: string } {
  const text = (input.client_json ?? '').trim()
  if (!text) return {}
  try {
    const c = parseGoogleClientJson(text)
    input.client_id = c.clientId
    input.client_secret = c.clientSecret
    input.authorization_url = c.authorizationUrl
    input.token_url = c.tokenUrl
    if (c.revocationUrl) input.revocation_url = c.revocationUrl
    if (!input.provider) input.provider = 'gmail'
    const warning = checkRedirectUriRegistered(c.redirectUris, redirectUri)
    return { notice: `Filled Client ID, Client Secret, Authorization Url and Token Url from the JSON${c.projectId ? ` of project ${c.projectId}` : ''}.${warning ? ` ${warning}` : ''}` }
  } catch (err) {
    if (!isAppError(err)) throw err
    return { error: err.message }
  }
}
