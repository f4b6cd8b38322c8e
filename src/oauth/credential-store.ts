import crypto from 'node:crypto'
import os from 'node:os'
import type { Db } from '../storage/database.ts'
import type { Credential, CredentialStatus } from '../storage/schema.ts'
import type { SecretBox } from '../shared/secret-box.ts'
import type { Logger } from '../shared/logger.ts'
import type { Metrics } from '../shared/metrics.ts'
import { AppError, isAppError } from '../shared/errors.ts'
import { backoffDelay } from '../shared/backoff.ts'
import { refreshAccessToken, revokeToken } from './token-client.ts'
import { describeOAuthError } from './admin-messages.ts'
import type { TokenSet } from './token-client.ts'

/** Refresh this long before the access token expires, so no connection starts with a dying token. */
export const REFRESH_AHEAD_MS = 5 * 60_000
/** How long one process may hold the refresh claim of a credential before another may take it. */
const CLAIM_MS = 30_000

export interface ClientRegistration {
  provider: string
  clientId: string
  clientSecret: string | null
  authMethod: 'client_secret_post' | 'client_secret_basic'
  authorizationUrl: string
  tokenUrl: string
  revocationUrl: string | null
  issuer: string | null
  scope: string
}

/**
 * The encrypted token store (DESIGN.md, Credentials). A credential moves through
 * `pending_authorization` → `connected` ⇄ `refreshing` → `degraded` (provider or network failing,
 * retried with backoff and jitter) or `needs_reauthorization` (`invalid_grant`: no retry until the
 * admin reconnects).
 *
 * Access tokens are refreshed ahead of expiry and once per credential however many workers ask:
 * a conditional UPDATE claims the refresh (works the same on SQLite and PostgreSQL), the HTTP call
 * happens outside any transaction, and the new access token and a rotated refresh token are stored
 * together in one transaction guarded by the claim.
 */
export class CredentialStore {
  readonly #inflight = new Map<number, Promise<string>>()
  readonly owner = `${os.hostname()}:${process.pid}:${crypto.randomBytes(3).toString('hex')}`

  constructor(
    private readonly db: Db,
    private readonly secrets: SecretBox,
    private readonly logger: Logger,
    private readonly metrics?: Metrics,
    /** Token and revocation endpoints on these private hosts are allowed (DESKMAIL_ALLOWED_PRIVATE_HOSTS). */
    readonly allowedPrivateHosts: readonly string[] = [],
    private readonly now: () => number = Date.now,
  ) {}

  private aad(id: number, column: string): string {
    return `credentials:${id}:${column}`
  }

  async create(reg: ClientRegistration): Promise<number> {
    const now = this.now()
    return this.db.transaction().execute(async (trx) => {
      const { id } = await trx
        .insertInto('credentials')
        .values({
          provider: reg.provider,
          client_id: reg.clientId,
          auth_method: reg.authMethod,
          authorization_url: reg.authorizationUrl,
          token_url: reg.tokenUrl,
          revocation_url: reg.revocationUrl,
          issuer: reg.issuer,
          scope: reg.scope,
          status: 'pending_authorization',
          created_at: now,
          updated_at: now,
        })
        .returning('id')
        .executeTakeFirstOrThrow()
      // The secret is sealed with the row id in its associated data, hence the second statement.
      await trx
        .updateTable('credentials')
        .set({ client_secret_enc: this.secrets.sealOptional(reg.clientSecret, this.aad(id, 'client_secret')) })
        .where('id', '=', id)
        .execute()
      return id
    })
  }

  async get(id: number): Promise<Credential | undefined> {
    return this.db.selectFrom('credentials').selectAll().where('id', '=', id).executeTakeFirst()
  }

  clientSecret(c: Credential): string | null {
    return this.secrets.openOptional(c.client_secret_enc, this.aad(c.id, 'client_secret'))
  }

  /**
   * Changes the client registration. A different client, endpoint or scope invalidates the tokens:
   * they were granted to the old one, so the admin must authorize again.
   */
  async updateClient(id: number, reg: Partial<ClientRegistration>): Promise<{ reauthorize: boolean }> {
    const current = await this.get(id)
    if (!current) throw new AppError('credential_not_found', 'This authorization no longer exists.')
    const changed =
      (reg.clientId !== undefined && reg.clientId !== current.client_id) ||
      (reg.tokenUrl !== undefined && reg.tokenUrl !== current.token_url) ||
      (reg.authorizationUrl !== undefined && reg.authorizationUrl !== current.authorization_url) ||
      (reg.scope !== undefined && reg.scope !== current.scope) ||
      (reg.clientSecret != null && reg.clientSecret !== this.clientSecret(current))
    await this.db
      .updateTable('credentials')
      .set({
        provider: reg.provider ?? current.provider,
        client_id: reg.clientId ?? current.client_id,
        auth_method: reg.authMethod ?? current.auth_method,
        authorization_url: reg.authorizationUrl ?? current.authorization_url,
        token_url: reg.tokenUrl ?? current.token_url,
        revocation_url: reg.revocationUrl === undefined ? current.revocation_url : reg.revocationUrl,
        issuer: reg.issuer === undefined ? current.issuer : reg.issuer,
        scope: reg.scope ?? current.scope,
        ...(reg.clientSecret != null ? { client_secret_enc: this.secrets.seal(reg.clientSecret, this.aad(id, 'client_secret')) } : {}),
        ...(changed
          ? {
              access_token_enc: null,
              access_token_expires_at: null,
              refresh_token_enc: null,
              status: 'pending_authorization' as const,
              status_code: 'client_changed',
              status_message: 'The OAuth client or endpoints changed: authorize again.',
            }
          : {}),
        updated_at: this.now(),
        version: current.version + 1,
      })
      .where('id', '=', id)
      .execute()
    return { reauthorize: changed }
  }

  /** The columns of a credential that just received tokens: sealed tokens, connected, no claim, no backoff. */
  private connectedColumns(id: number, tokens: TokenSet) {
    return {
      access_token_enc: this.secrets.seal(tokens.accessToken, this.aad(id, 'access_token')),
      access_token_expires_at: tokens.expiresAt.getTime(),
      ...(tokens.refreshToken ? { refresh_token_enc: this.secrets.seal(tokens.refreshToken, this.aad(id, 'refresh_token')) } : {}),
      status: 'connected' as const,
      status_code: null,
      status_message: null,
      consecutive_failures: 0,
      next_attempt_at: null,
      refreshed_at: this.now(),
      refresh_claimed_by: null,
      refresh_claim_until: null,
      updated_at: this.now(),
    }
  }

  /** Stores the tokens of a completed authorization (code exchange) in one statement. */
  async storeAuthorization(id: number, tokens: TokenSet, account: { email: string | null; subject: string | null }): Promise<void> {
    if (!tokens.refreshToken) {
      throw new AppError('oauth_no_refresh_token', 'The provider returned no refresh token.')
    }
    const c = await this.get(id)
    await this.db
      .updateTable('credentials')
      .set({
        ...this.connectedColumns(id, tokens),
        account_email: account.email,
        account_subject: account.subject,
        version: (c?.version ?? 0) + 1,
      })
      .where('id', '=', id)
      .execute()
  }

  async setStatus(id: number, status: CredentialStatus, code: string | null, message: string | null): Promise<void> {
    await this.db
      .updateTable('credentials')
      .set({ status, status_code: code, status_message: message, updated_at: this.now() })
      .where('id', '=', id)
      .execute()
  }

  /**
   * A valid access token for a connection, refreshed first when it expires within
   * `minValidityMs`. Throws `credential_needs_reauthorization` (not transient) or
   * `credential_degraded` (transient) instead of hammering a failing provider.
   */
  async accessToken(id: number, minValidityMs = 60_000): Promise<string> {
    const c = await this.get(id)
    if (!c) throw new AppError('credential_not_found', 'This authorization no longer exists.')
    this.assertUsable(c)
    if (c.access_token_enc && (c.access_token_expires_at ?? 0) - this.now() > minValidityMs) {
      return this.secrets.open(c.access_token_enc, this.aad(id, 'access_token'))
    }
    return this.refresh(id)
  }

  private assertUsable(c: Credential): void {
    if (c.status === 'needs_reauthorization' || c.status === 'pending_authorization') {
      throw new AppError('credential_needs_reauthorization', c.status_message ?? 'This server needs to be authorized: click Reconnect.', {
        details: { credentialStatus: c.status, providerCode: c.status_code ?? undefined },
      })
    }
    if (!c.refresh_token_enc) {
      throw new AppError('credential_needs_reauthorization', 'No refresh token is stored: click Reconnect.')
    }
  }

  /** Refreshes now (single flight per process, claimed in the database across processes). */
  refresh(id: number): Promise<string> {
    const running = this.#inflight.get(id)
    if (running) return running
    const p = this.refreshOnce(id).finally(() => this.#inflight.delete(id))
    this.#inflight.set(id, p)
    return p
  }

  private async refreshOnce(id: number): Promise<string> {
    for (let attempt = 0; attempt < 40; attempt++) {
      const c = await this.get(id)
      if (!c) throw new AppError('credential_not_found', 'This authorization no longer exists.')
      this.assertUsable(c)
      const now = this.now()
      // Another process refreshed meanwhile: use its token.
      if (attempt > 0 && c.access_token_enc && (c.access_token_expires_at ?? 0) - now > 60_000) {
        return this.secrets.open(c.access_token_enc, this.aad(id, 'access_token'))
      }
      if (c.status === 'degraded' && c.next_attempt_at && c.next_attempt_at > now) {
        // Still backing off: an unexpired access token keeps working, an expired one waits.
        if (c.access_token_enc && (c.access_token_expires_at ?? 0) > now) return this.secrets.open(c.access_token_enc, this.aad(id, 'access_token'))
        throw new AppError('credential_degraded', c.status_message ?? 'The provider is not answering; deskmail retries by itself.', {
          transient: true,
          details: { retryAt: c.next_attempt_at },
        })
      }
      const claimed = await this.db
        .updateTable('credentials')
        .set({ refresh_claimed_by: this.owner, refresh_claim_until: now + CLAIM_MS, status: 'refreshing' })
        .where('id', '=', id)
        .where('version', '=', c.version)
        .where((eb) => eb.or([eb('refresh_claim_until', 'is', null), eb('refresh_claim_until', '<', now)]))
        .executeTakeFirst()
      if (Number(claimed.numUpdatedRows) === 1) return this.performRefresh(c)
      // Someone else holds the claim: wait for their result.
      await new Promise((r) => setTimeout(r, 250))
    }
    throw new AppError('credential_degraded', 'Another worker is refreshing this token and did not finish; retrying later.', { transient: true })
  }

  private async performRefresh(c: Credential): Promise<string> {
    const id = c.id
    let tokens: TokenSet
    try {
      tokens = await refreshAccessToken({
        tokenUrl: c.token_url,
        clientId: c.client_id,
        clientSecret: this.clientSecret(c) ?? undefined,
        authMethod: c.auth_method,
        refreshToken: this.secrets.open(c.refresh_token_enc!, this.aad(id, 'refresh_token')),
        allowedPrivateHosts: this.allowedPrivateHosts,
      })
    } catch (err) {
      await this.recordRefreshFailure(c, err)
      throw err
    }
    const stored = await this.db
      .updateTable('credentials')
      .set({
        // Microsoft rotates the refresh token on every use: the new one is stored in this same
        // statement, or the next refresh would present a spent token (PROVIDERS.md, Microsoft).
        ...this.connectedColumns(id, tokens),
        version: c.version + 2,
      })
      .where('id', '=', id)
      .where('refresh_claimed_by', '=', this.owner)
      .executeTakeFirst()
    if (Number(stored.numUpdatedRows) !== 1) {
      this.logger.warn({ credentialId: id }, 'refresh claim was lost while refreshing; the new token is discarded')
    }
    this.metrics?.tokenRefreshes.inc({ result: 'ok' })
    this.logger.info({ credentialId: id, expiresAt: tokens.expiresAt.toISOString(), rotated: Boolean(tokens.refreshToken) }, 'access token refreshed')
    return tokens.accessToken
  }

  private async recordRefreshFailure(c: Credential, err: unknown): Promise<void> {
    const code = isAppError(err) ? err.code : 'oauth_provider_unavailable'
    const transient = isAppError(err) ? err.transient : true
    // What the admin reads on the server list: what is wrong and what to do.
    const message = describeOAuthError(code, isAppError(err) ? err.details : {}, { redirectUri: '', provider: c.provider })
    if (!transient) {
      // invalid_grant, invalid_client...: retrying cannot help; the admin must reconnect.
      this.metrics?.tokenRefreshes.inc({ result: 'needs_reauthorization' })
      this.logger.warn({ credentialId: c.id, code, details: isAppError(err) ? err.details : undefined }, 'token refresh refused: needs re-authorization')
      await this.db
        .updateTable('credentials')
        .set({
          status: 'needs_reauthorization',
          status_code: code,
          status_message: message,
          refresh_claimed_by: null,
          refresh_claim_until: null,
          version: c.version + 2,
          updated_at: this.now(),
        })
        .where('id', '=', c.id)
        .execute()
      return
    }
    const failures = c.consecutive_failures + 1
    this.metrics?.tokenRefreshes.inc({ result: 'degraded' })
    this.logger.warn({ credentialId: c.id, code, failures }, 'token refresh failed; backing off')
    await this.db
      .updateTable('credentials')
      .set({
        status: 'degraded',
        status_code: code,
        status_message: message,
        consecutive_failures: failures,
        next_attempt_at: this.now() + backoffDelay(failures),
        refresh_claimed_by: null,
        refresh_claim_until: null,
        version: c.version + 2,
        updated_at: this.now(),
      })
      .where('id', '=', c.id)
      .execute()
  }

  /** Credentials whose access token expires soon and that someone uses: for the refresher task. */
  async dueForRefresh(limit: number): Promise<Array<{ id: number; expiresAt: number }>> {
    const horizon = this.now() + REFRESH_AHEAD_MS
    const rows = await this.db
      .selectFrom('credentials')
      .select(['id', 'access_token_expires_at'])
      .where('status', 'in', ['connected', 'degraded'])
      .where('access_token_expires_at', '<', horizon)
      .where((eb) => eb.or([eb('refresh_claim_until', 'is', null), eb('refresh_claim_until', '<', this.now())]))
      .where((eb) => eb.or([eb('next_attempt_at', 'is', null), eb('next_attempt_at', '<=', this.now())]))
      .where((eb) =>
        eb.exists(eb.selectFrom('email_servers').select('id').whereRef('email_servers.credential_id', '=', 'credentials.id').where('enabled', '=', 1)),
      )
      .orderBy('access_token_expires_at')
      .limit(limit)
      .execute()
    return rows.map((r) => ({ id: r.id, expiresAt: r.access_token_expires_at ?? 0 }))
  }

  /** Revokes at the provider where it has an endpoint (RFC 7009), then forgets the tokens. */
  async revokeAndDelete(id: number): Promise<{ revoked: boolean; error?: string }> {
    const c = await this.get(id)
    if (!c) return { revoked: false }
    let revoked = false
    let error: string | undefined
    const token = c.refresh_token_enc ? this.secrets.open(c.refresh_token_enc, this.aad(id, 'refresh_token')) : null
    if (c.revocation_url && token) {
      try {
        await revokeToken({
          revocationUrl: c.revocation_url,
          clientId: c.client_id,
          clientSecret: this.clientSecret(c) ?? undefined,
          token,
          allowedPrivateHosts: this.allowedPrivateHosts,
        })
        revoked = true
      } catch (err) {
        error = err instanceof Error ? err.message : String(err)
        this.logger.warn({ credentialId: id, error }, 'revocation at the provider failed; tokens deleted locally')
      }
    }
    await this.db.deleteFrom('credentials').where('id', '=', id).execute()
    return { revoked, error }
  }
}
