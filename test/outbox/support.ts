import type { TestApp } from '../support/app.ts'
import type { MailWorld } from '../support/mail-world.ts'
import { CLIENT } from '../support/mail-world.ts'
import type { ServerFormValues } from '../../src/mailboxes/form.ts'
import type { EmailServer } from '../../src/storage/schema.ts'

/** The values of an outgoing server form (Custom provider), before overrides. */
export function outgoingValues(over: Partial<ServerFormValues> & { emailAddress: string; port: number }): ServerFormValues {
  return {
    direction: 'outgoing',
    name: `Out ${over.emailAddress}`,
    displayName: 'Example Support',
    protocol: 'smtp',
    host: '127.0.0.1',
    security: 'starttls',
    folder: 'INBOX',
    authType: 'oauth2',
    provider: 'custom',
    authorizationUrl: 'http://127.0.0.1:9/auth',
    tokenUrl: 'http://127.0.0.1:9/token',
    revocationUrl: null,
    issuer: null,
    scope: 'https://mail.google.com/',
    clientId: CLIENT.id,
    clientSecret: CLIENT.secret,
    username: null,
    password: null,
    pollIntervalSeconds: 60,
    ackAction: 'leave',
    ackFolder: null,
    outgoingServerId: null,
    useIncomingAuthorization: null,
    isDefault: false,
    autoAckEnabled: false,
    autoAckSubject: null,
    autoAckBody: null,
    ...over,
  }
}

/**
 * An outgoing server on the SMTP sink, authorized at the stand-in OAuth server with real tokens
 * (as the consent flow would leave it).
 */
export async function connectedOutgoingServer(app: TestApp, world: MailWorld, account: string, over: Partial<ServerFormValues> = {}): Promise<EmailServer> {
  const server = await app.services.emailServers.create(
    outgoingValues({ emailAddress: account, port: world.smtp!.port, tokenUrl: world.oauth.tokenUrl, authorizationUrl: world.oauth.authorizationUrl, ...over }),
  )
  await storeFreshTokens(app, world, server, account)
  return app.services.emailServers.get(server.id)
}

/** What Reconnect leaves behind: new tokens for the account, the credential connected. */
export async function storeFreshTokens(app: TestApp, world: MailWorld, server: EmailServer, account: string): Promise<void> {
  const t = await world.oauth.issueTokens({ clientId: CLIENT.id, email: account, scope: 'https://mail.google.com/' })
  await app.services.credentials.storeAuthorization(
    server.credential_id!,
    { accessToken: t.access_token, tokenType: 'bearer', refreshToken: t.refresh_token, expiresAt: new Date(Date.now() + t.expires_in * 1000) },
    { email: account, subject: account },
  )
}

/** An incoming server row (as the Incoming Email Servers form makes it), without a mailbox behind it. */
export async function incomingServerRow(app: TestApp, over: Partial<EmailServer> = {}): Promise<EmailServer> {
  const now = Date.now()
  return app.services.storage.db
    .insertInto('email_servers')
    .values({
      direction: 'incoming',
      name: 'Support inbox',
      email_address: 'support@example.test',
      protocol: 'imap',
      host: '127.0.0.1',
      port: 993,
      security: 'tls',
      auth_type: 'oauth2',
      status: 'connected',
      ack_action: 'leave',
      created_at: now,
      updated_at: now,
      ...over,
    } as any)
    .returningAll()
    .executeTakeFirstOrThrow()
}

let seq = 0

/** A request as the ingest pipeline leaves it: the customer, the request, the customer's first mail. */
export async function seedRequest(
  app: TestApp,
  opts: { customer: string; customerName?: string; subject?: string; serverId?: number | null; inboundMessageId?: string; references?: string },
): Promise<{ requestId: number; number: number; inboundMessageId: string; inboundRowId: number }> {
  const db = app.services.storage.db
  const now = Date.now()
  const max = await db.selectFrom('requests').select((eb) => eb.fn.max('number').as('n')).executeTakeFirst()
  const number = Number(max?.n ?? 0) + 1
  let contact = await db.selectFrom('contacts').select('id').where('email', '=', opts.customer).executeTakeFirst()
  contact ??= await db.insertInto('contacts').values({ email: opts.customer, name: opts.customerName ?? null, created_at: now }).returning('id').executeTakeFirstOrThrow()
  const request = await db
    .insertInto('requests')
    .values({ number, subject: opts.subject ?? 'Printer on fire', requester_id: contact.id, server_id: opts.serverId ?? null, status: 'open', created_at: now, last_activity_at: now - 60_000 })
    .returning('id')
    .executeTakeFirstOrThrow()
  const inboundMessageId = opts.inboundMessageId ?? `cust-${++seq}.${now}@customer.test`
  const msg = await db
    .insertInto('messages')
    .values({
      request_id: request.id,
      direction: 'inbound',
      message_id_header: inboundMessageId,
      references_header: opts.references ?? null,
      from_address: opts.customer,
      from_name: opts.customerName ?? null,
      subject: opts.subject ?? 'Printer on fire',
      text_body: 'Help!',
      delivery_status: 'received',
      created_at: now - 60_000,
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  return { requestId: request.id, number, inboundMessageId, inboundRowId: msg.id }
}

/** The top-level header fields of a raw message, unfolded, lower-case names. */
export function headersOf(raw: Buffer | string): Map<string, string[]> {
  const text = raw.toString('utf8')
  const end = text.search(/\r?\n\r?\n/)
  const head = (end < 0 ? text : text.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ')
  const out = new Map<string, string[]>()
  for (const line of head.split(/\r?\n/)) {
    const i = line.indexOf(':')
    if (i < 0) continue
    const name = line.slice(0, i).trim().toLowerCase()
    out.set(name, [...(out.get(name) ?? []), line.slice(i + 1).trim()])
  }
  return out
}

export function header(raw: Buffer | string, name: string): string | undefined {
  return headersOf(raw).get(name.toLowerCase())?.[0]
}

/** Messages the sink received with this Message-ID (angle brackets included in `id` or not). */
export function receivedWithId(world: MailWorld, id: string) {
  const want = id.startsWith('<') ? id : `<${id}>`
  return world.smtp!.messages.filter((m) => header(m.raw, 'message-id') === want)
}
