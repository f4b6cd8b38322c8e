import { startOAuthServer } from '../harness/oauth-server.ts'
import type { OAuthServer } from '../harness/oauth-server.ts'
import { startDovecot } from '../harness/dovecot.ts'
import type { DovecotServer, DovecotMechanism } from '../harness/dovecot.ts'
import { startSmtpSink } from '../harness/smtp-sink.ts'
import type { SmtpSink } from '../harness/smtp-sink.ts'
import type { HttpClient } from './http-client.ts'

/** The real servers a mailbox test needs: the OAuth stand-in, Dovecot, and optionally the SMTP sink. */
export interface MailWorld {
  oauth: OAuthServer
  dovecot: DovecotServer
  smtp?: SmtpSink
  stop(): Promise<void>
}

export async function startMailWorld(opts: { smtp?: boolean; mechanisms?: DovecotMechanism[] } = {}): Promise<MailWorld> {
  const oauth = await startOAuthServer()
  const introspection = { introspectionUrl: oauth.introspectionUrl, clientId: oauth.introspectionClient.id, clientSecret: oauth.introspectionClient.secret }
  const dovecot = await startDovecot({ oauth: introspection, mechanisms: opts.mechanisms })
  const smtp = opts.smtp ? await startSmtpSink(introspection) : undefined
  return {
    oauth,
    dovecot,
    smtp,
    async stop() {
      await smtp?.stop()
      await dovecot.stop()
      await oauth.stop()
    },
  }
}

export const CLIENT = { id: 'deskmail-web', secret: 'stand-in-client-secret-0123456789' }

/** Registers deskmail's OAuth client at the stand-in with the app's redirect URI. */
export function registerDeskmail(world: MailWorld, appUrl: string, opts: { clientId?: string; rotate?: boolean; accessTokenTTL?: number } = {}) {
  world.oauth.registerClient({
    client_id: opts.clientId ?? CLIENT.id,
    client_secret: CLIENT.secret,
    redirect_uris: [`${appUrl}/oauth/callback`],
    rotateRefreshTokens: opts.rotate,
    accessTokenTTL: opts.accessTokenTTL,
  })
}

/** The Add Incoming Email Server form, filled for the stand-in (Custom provider) and Dovecot. */
export function incomingForm(world: MailWorld, mailbox: string, overrides: Record<string, string> = {}): Record<string, string> {
  const protocol = overrides.protocol ?? 'imap'
  return {
    name: `Support ${mailbox}`,
    email_address: mailbox,
    protocol,
    host: '127.0.0.1',
    port: String(protocol === 'pop3' ? world.dovecot.pop3sPort : world.dovecot.imapsPort),
    security: 'tls',
    folder: 'INBOX',
    auth_type: 'oauth2',
    provider: 'custom',
    authorization_url: world.oauth.authorizationUrl,
    token_url: world.oauth.tokenUrl,
    scope: 'https://mail.google.com/ openid email',
    client_id: CLIENT.id,
    client_secret: CLIENT.secret,
    ack_action: 'leave',
    poll_interval_seconds: '60',
    action: 'save',
    ...overrides,
  }
}

/** The provider URL on the "Sign in at ..." page that Save or Reconnect answers with. */
export function providerUrlFrom(html: string): string {
  const m = /id="continue-to-provider" href="([^"]+)"/.exec(html)
  if (!m) throw new Error(`no provider link on the page: ${html.slice(0, 500)}`)
  return m[1]!.replace(/&#(\d+);/g, (_, c) => String.fromCharCode(Number(c)))
}

/**
 * Saves a new incoming server through the portal, consents at the stand-in as `login`, and
 * follows the callback back to the list. Returns the final page and the server id.
 */
export async function connectIncoming(world: MailWorld, admin: HttpClient, form: Record<string, string>, login = form.email_address!) {
  await admin.get('/admin/support-channel/emails/incoming/new')
  const saved = await admin.postForm(`/admin/support-channel/emails/${form.protocol === 'smtp' ? 'outgoing' : 'incoming'}/new`, form)
  if (saved.status !== 200) throw new Error(`save failed: ${saved.status} ${saved.text.slice(0, 2000)}`)
  const callback = await world.oauth.authorizeHeadless(providerUrlFrom(saved.text), { login })
  const back = await admin.get(new URL(callback).pathname + new URL(callback).search)
  const page = await admin.follow(Promise.resolve(back))
  return { callback, back, page }
}
