import { EventEmitter } from 'node:events'
import type { Db } from '../storage/database.ts'
import type { Credential, EmailServer, ServerStatus } from '../storage/schema.ts'
import type { SecretBox } from '../shared/secret-box.ts'
import type { Logger } from '../shared/logger.ts'
import { AppError, isAppError } from '../shared/errors.ts'
import type { ClientRegistration, CredentialStore } from '../oauth/credential-store.ts'
import { testMailConnection } from './connection-test.ts'
import type { ConnectionTestResult } from './connection-test.ts'
import { validateServerForm } from './form.ts'
import type { FieldErrors, ServerDirection, ServerFormInput, ServerFormValues } from './form.ts'
import type { MailLogin } from '../mail/imap/connect.ts'

/** What the list and the API show for a server: never a secret. */
export interface ServerSummary {
  id: number
  direction: ServerDirection
  name: string
  emailAddress: string
  protocol: string
  host: string
  port: number
  security: string
  folder: string
  authType: string
  provider: string | null
  enabled: boolean
  status: ServerStatus
  statusLabel: string
  statusMessage: string | null
  statusCode: string | null
  account: string | null
  lastSyncAt: number | null
  lastSuccessAt: number | null
  credentialId: number | null
  isDefault: boolean
  clientSecretSet: boolean
}

export const statusLabels: Record<ServerStatus, string> = {
  pending_authorization: 'Authorization pending',
  connected: 'Connected',
  degraded: 'Degraded',
  needs_reauthorization: 'Needs re-authorization',
  error: 'Error',
  disabled: 'Disabled',
}

/**
 * Incoming and outgoing email servers: their configuration, their OAuth credential, their status
 * and the connection test. Web routes and workers call this, never the tables directly.
 */
export class EmailServerService {
  /**
   * 'change' after a server is created, edited, enabled, disabled, deleted or newly connected, so
   * that a supervisor in this process picks it up at once instead of at its next heartbeat.
   */
  readonly changes = new EventEmitter()

  constructor(
    private readonly db: Db,
    private readonly secrets: SecretBox,
    private readonly credentials: CredentialStore,
    private readonly logger: Logger,
    private readonly allowedPrivateHosts: string[],
  ) {}

  async list(direction?: ServerDirection): Promise<ServerSummary[]> {
    let q = this.db
      .selectFrom('email_servers')
      .leftJoin('credentials', 'credentials.id', 'email_servers.credential_id')
      .selectAll('email_servers')
      .select(['credentials.provider as c_provider', 'credentials.account_email as c_account', 'credentials.status as c_status', 'credentials.status_message as c_message', 'credentials.status_code as c_code', 'credentials.client_secret_enc as c_secret'])
      .orderBy('email_servers.id')
    if (direction) q = q.where('email_servers.direction', '=', direction)
    const rows = await q.execute()
    return rows.map((r) => summarize(r, r as any))
  }

  async get(id: number): Promise<EmailServer> {
    const s = await this.db.selectFrom('email_servers').selectAll().where('id', '=', id).executeTakeFirst()
    if (!s) throw new AppError('server_not_found', 'This email server does not exist (it may have been deleted).')
    return s
  }

  async summary(id: number): Promise<ServerSummary> {
    const found = (await this.list()).find((s) => s.id === id)
    if (!found) throw new AppError('server_not_found', 'This email server does not exist (it may have been deleted).')
    return found
  }

  validate(direction: ServerDirection, input: ServerFormInput, existing: boolean) {
    return validateServerForm(direction, input, {
      existing,
      allowedPrivateHosts: this.allowedPrivateHosts,
      hasIncomingAuthorization: async (id) => {
        const s = await this.db.selectFrom('email_servers').select(['credential_id', 'direction']).where('id', '=', id).executeTakeFirst()
        return Boolean(s?.credential_id && s.direction === 'incoming')
      },
    })
  }

  /** Creates the server (and its OAuth client registration) as *Authorization pending*. */
  async create(v: ServerFormValues): Promise<EmailServer> {
    const now = Date.now()
    let credentialId: number | null = null
    if (v.authType === 'oauth2') {
      credentialId = v.useIncomingAuthorization
        ? (await this.get(v.useIncomingAuthorization)).credential_id
        : await this.credentials.create(clientRegistration(v))
    }
    const server = await this.db.transaction().execute(async (trx) => {
      if (v.isDefault && v.direction === 'outgoing') await trx.updateTable('email_servers').set({ is_default: 0 }).where('direction', '=', 'outgoing').execute()
      const hasDefault = await trx.selectFrom('email_servers').select('id').where('direction', '=', 'outgoing').where('is_default', '=', 1).executeTakeFirst()
      const row = await trx
        .insertInto('email_servers')
        .values({
          direction: v.direction,
          ...serverColumns(v, credentialId),
          enabled: 1,
          status: 'pending_authorization',
          is_default: v.direction === 'outgoing' && (v.isDefault || !hasDefault) ? 1 : 0,
          created_at: now,
          updated_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow()
      if (v.password) {
        await trx.updateTable('email_servers').set({ password_enc: this.secrets.seal(v.password, `email_servers:${row.id}:password`) }).where('id', '=', row.id).execute()
      }
      return row
    })
    this.logger.info({ serverId: server.id, direction: v.direction, protocol: v.protocol, provider: v.provider }, 'email server created')
    this.changes.emit('change', server.id)
    return server
  }

  /** Applies an edit. Returns whether the server must be authorized again (client or endpoints changed). */
  async update(id: number, v: ServerFormValues): Promise<{ reauthorize: boolean }> {
    const current = await this.get(id)
    let reauthorize = false
    let credentialId = current.credential_id
    if (v.authType === 'oauth2') {
      if (v.useIncomingAuthorization) {
        credentialId = (await this.get(v.useIncomingAuthorization)).credential_id
      } else if (credentialId && !(await this.sharesCredentialAsBorrower(current))) {
        ;({ reauthorize } = await this.credentials.updateClient(credentialId, clientRegistration(v)))
      } else {
        credentialId = await this.credentials.create(clientRegistration(v))
        reauthorize = true
      }
    }
    // A different account or server invalidates what the tokens were checked against.
    if (v.emailAddress !== current.email_address) reauthorize = reauthorize || v.authType === 'oauth2'
    await this.db.transaction().execute(async (trx) => {
      if (v.isDefault && v.direction === 'outgoing') await trx.updateTable('email_servers').set({ is_default: 0 }).where('direction', '=', 'outgoing').execute()
      await trx
        .updateTable('email_servers')
        .set({
          ...serverColumns(v, v.authType === 'oauth2' ? credentialId : null),
          ...(v.password ? { password_enc: this.secrets.seal(v.password, `email_servers:${id}:password`) } : {}),
          ...(v.direction === 'outgoing' && v.isDefault ? { is_default: 1 } : {}),
          ...(reauthorize ? { status: 'pending_authorization' as const, status_message: 'Settings changed: authorize again.', status_code: 'client_changed' } : {}),
          updated_at: Date.now(),
        })
        .where('id', '=', id)
        .execute()
    })
    this.changes.emit('change', id)
    return { reauthorize }
  }

  private async sharesCredentialAsBorrower(server: EmailServer): Promise<boolean> {
    if (!server.credential_id) return false
    const owner = await this.db
      .selectFrom('email_servers')
      .select('id')
      .where('credential_id', '=', server.credential_id)
      .orderBy('id')
      .executeTakeFirst()
    return owner !== undefined && owner.id !== server.id
  }

  async setEnabled(id: number, enabled: boolean): Promise<void> {
    const s = await this.get(id)
    await this.db
      .updateTable('email_servers')
      .set({
        enabled: enabled ? 1 : 0,
        status: enabled ? (s.status === 'disabled' ? 'pending_authorization' : s.status) : 'disabled',
        updated_at: Date.now(),
      })
      .where('id', '=', id)
      .execute()
    if (enabled) await this.refreshStatusFromCredential(id)
    this.changes.emit('change', id)
  }

  /** Other servers that use the same OAuth client and account (revoking one token revokes the grant for all). */
  async serversSharingGrant(id: number): Promise<Array<{ id: number; name: string }>> {
    const s = await this.get(id)
    if (!s.credential_id) return []
    const c = await this.credentials.get(s.credential_id)
    if (!c) return []
    return this.db
      .selectFrom('email_servers')
      .innerJoin('credentials', 'credentials.id', 'email_servers.credential_id')
      .select(['email_servers.id', 'email_servers.name'])
      .where('email_servers.id', '!=', id)
      .where((eb) =>
        eb.or([
          eb('credentials.id', '=', c.id),
          eb.and([eb('credentials.client_id', '=', c.client_id), eb('credentials.account_email', '=', c.account_email ?? '\u0000')]),
        ]),
      )
      .execute()
  }

  /**
   * Deletes a server. Its credential is revoked at the provider (where it has a revocation endpoint)
   * and deleted, unless another server still uses that same credential.
   */
  async delete(id: number): Promise<{ revoked: boolean; revokeError?: string }> {
    const s = await this.get(id)
    await this.db.deleteFrom('email_servers').where('id', '=', id).execute()
    this.changes.emit('change', id)
    await this.db.deleteFrom('mailbox_leases').where('server_id', '=', id).execute()
    await this.db.deleteFrom('oauth_authorizations').where('server_id', '=', id).execute()
    if (!s.credential_id) return { revoked: false }
    const stillUsed = await this.db.selectFrom('email_servers').select('id').where('credential_id', '=', s.credential_id).executeTakeFirst()
    if (stillUsed) return { revoked: false }
    const r = await this.credentials.revokeAndDelete(s.credential_id)
    this.logger.info({ serverId: id, revoked: r.revoked }, 'email server deleted')
    return { revoked: r.revoked, revokeError: r.error }
  }

  /** The login the workers use: a fresh access token (refreshed ahead) or the stored password. */
  async login(server: EmailServer): Promise<MailLogin> {
    const user = server.username || server.email_address
    if (server.auth_type === 'password') {
      const password = this.secrets.openOptional(server.password_enc, `email_servers:${server.id}:password`)
      if (!password) throw new AppError('server_password_missing', 'No password is stored for this server: edit it and enter the password.')
      return { user, password }
    }
    if (!server.credential_id) throw new AppError('credential_needs_reauthorization', 'This server has not been authorized yet: click Reconnect.')
    return { user, accessToken: await this.credentials.accessToken(server.credential_id) }
  }

  /** Runs the connection test and records its outcome as the server's status. */
  async testConnection(id: number): Promise<ConnectionTestResult> {
    const s = await this.get(id)
    let result: ConnectionTestResult
    const credential = s.credential_id ? await this.credentials.get(s.credential_id) : undefined
    try {
      const login = await this.login(s)
      result = await testMailConnection({ ...s, provider: credential?.provider ?? 'custom' }, login)
    } catch (err) {
      if (!isAppError(err)) throw err
      result = { ok: false, message: err.message, code: err.code, transient: err.transient }
    }
    await this.recordStatus(id, result)
    return result
  }

  /** Records a sync or test outcome in words the admin can act on. */
  async recordStatus(id: number, result: { ok: boolean; message: string; code?: string; transient?: boolean }): Promise<void> {
    const now = Date.now()
    let status: ServerStatus
    if (result.ok) status = 'connected'
    else if (result.transient) status = 'degraded'
    else if (result.code === 'credential_needs_reauthorization' || result.code?.startsWith('oauth_')) status = 'needs_reauthorization'
    else status = 'error'
    const s = await this.get(id)
    await this.db
      .updateTable('email_servers')
      .set({
        status: s.enabled ? status : 'disabled',
        status_code: result.ok ? null : (result.code ?? null),
        status_message: result.message,
        last_sync_at: now,
        ...(result.ok ? { last_success_at: now } : { last_error_at: now }),
        updated_at: now,
      })
      .where('id', '=', id)
      .execute()
    if (result.ok && s.status !== 'connected') this.changes.emit('change', id)
  }

  /** Mirrors a credential problem (needs re-authorization) into the server's status. */
  async refreshStatusFromCredential(id: number): Promise<void> {
    const s = await this.get(id)
    if (!s.credential_id || !s.enabled) return
    const c = await this.credentials.get(s.credential_id)
    if (c?.status === 'needs_reauthorization' || c?.status === 'pending_authorization') {
      await this.db
        .updateTable('email_servers')
        .set({ status: c.status, status_code: c.status_code, status_message: c.status_message, updated_at: Date.now() })
        .where('id', '=', id)
        .execute()
    }
  }

  credentialOf(server: EmailServer): Promise<Credential | undefined> {
    return server.credential_id ? this.credentials.get(server.credential_id) : Promise.resolve(undefined)
  }
}

/** The columns a saved form sets, on create and on edit alike. */
function serverColumns(v: ServerFormValues, credentialId: number | null) {
  return {
    name: v.name,
    email_address: v.emailAddress,
    protocol: v.protocol,
    host: v.host,
    port: v.port,
    security: v.security,
    folder: v.folder,
    auth_type: v.authType,
    credential_id: credentialId,
    username: v.username,
    poll_interval_seconds: v.pollIntervalSeconds,
    ack_action: v.ackAction,
    ack_folder: v.ackFolder,
    outgoing_server_id: v.outgoingServerId,
    auto_ack_enabled: v.autoAckEnabled ? 1 : 0,
    auto_ack_subject: v.autoAckSubject,
    auto_ack_body: v.autoAckBody,
    from_address: v.direction === 'outgoing' ? v.emailAddress : null,
    display_name: v.displayName,
  }
}

/** The OAuth client registration the form describes (client_secret_post: RFC 6749 2.3.1, the providers' default). */
function clientRegistration(v: ServerFormValues): ClientRegistration {
  return {
    provider: v.provider,
    clientId: v.clientId,
    clientSecret: v.clientSecret,
    authMethod: 'client_secret_post',
    authorizationUrl: v.authorizationUrl,
    tokenUrl: v.tokenUrl,
    revocationUrl: v.revocationUrl,
    issuer: v.issuer,
    scope: v.scope,
  }
}

function summarize(s: EmailServer, c: { c_provider: string | null; c_account: string | null; c_status: string | null; c_message: string | null; c_code: string | null; c_secret: string | null }): ServerSummary {
  // A dead credential outranks the last sync result: the admin must see the Reconnect state.
  let status: ServerStatus = s.status
  let statusMessage = s.status_message
  let statusCode = s.status_code
  if (s.enabled && (c.c_status === 'needs_reauthorization' || c.c_status === 'pending_authorization') && s.status !== 'pending_authorization') {
    status = c.c_status
    statusMessage = c.c_message ?? statusMessage
    statusCode = c.c_code ?? statusCode
  }
  if (!s.enabled) status = 'disabled'
  return {
    id: s.id,
    direction: s.direction,
    name: s.name,
    emailAddress: s.email_address,
    protocol: s.protocol,
    host: s.host,
    port: s.port,
    security: s.security,
    folder: s.folder,
    authType: s.auth_type,
    provider: c.c_provider,
    enabled: Boolean(s.enabled),
    status,
    statusLabel: statusLabels[status],
    statusMessage,
    statusCode,
    account: c.c_account,
    lastSyncAt: s.last_sync_at,
    lastSuccessAt: s.last_success_at,
    credentialId: s.credential_id,
    isDefault: Boolean(s.is_default),
    clientSecretSet: Boolean(c.c_secret),
  }
}

export type { FieldErrors, ServerFormInput, ServerFormValues, ServerDirection }
