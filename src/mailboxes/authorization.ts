import type { Db } from '../storage/database.ts'
import type { SecretBox } from '../shared/secret-box.ts'
import type { Logger } from '../shared/logger.ts'
import { AppError, isAppError } from '../shared/errors.ts'
import type { CredentialStore } from '../oauth/credential-store.ts'
import { callbackErrorToAppError, createAuthorizationRequest, hashState, isCallbackError, parseCallbackParams } from '../oauth/authorization.ts'
import { checkConsentedAccount } from '../oauth/id-token.ts'
import { exchangeAuthorizationCode } from '../oauth/token-client.ts'
import { describeOAuthError } from '../oauth/admin-messages.ts'
import { isPresetId } from '../oauth/presets.ts'
import type { EmailServerService } from './email-servers.ts'

/** A pending authorization lives this long: enough to sign in, short enough to be useless when stolen. */
const AUTHORIZATION_TTL_MS = 10 * 60_000

export interface CallbackOutcome {
  /** The server the callback was for, when the state was ours. */
  serverId?: number
  direction?: 'incoming' | 'outgoing'
  ok: boolean
  /** One sentence for the admin. */
  message: string
  code?: string
}

/**
 * Connecting a mailbox with OAuth 2.0: the authorization request (state and PKCE bound to the
 * admin's session and to the server, RFC 9700 section 2.1 and 4.7; RFC 7636) and the callback
 * (state checked and spent once, code exchanged at the token URL stored with the pending
 * authorization, never one from the request; the consenting account checked; the connection tested).
 */
export class MailboxAuthorization {
  constructor(
    private readonly db: Db,
    private readonly secrets: SecretBox,
    private readonly credentials: CredentialStore,
    private readonly servers: EmailServerService,
    private readonly logger: Logger,
    private readonly redirectUri: string,
  ) {}

  async start(serverId: number, session: { userId: number; sessionId: string }): Promise<string> {
    const server = await this.servers.get(serverId)
    if (server.auth_type !== 'oauth2' || !server.credential_id) {
      throw new AppError('server_not_oauth', 'This server does not use OAuth 2.0.')
    }
    const c = await this.credentials.get(server.credential_id)
    if (!c) throw new AppError('credential_not_found', 'This server has no OAuth client: edit it and enter the Client ID and Secret.')
    const presetId = isPresetId(c.provider) ? c.provider : 'custom'
    const request = createAuthorizationRequest({
      authorizationUrl: c.authorization_url,
      clientId: c.client_id,
      redirectUri: this.redirectUri,
      scope: c.scope,
      presetId,
      loginHint: server.email_address,
      // A Custom provider is asked who consented only when the admin's scope speaks OpenID Connect.
      requestIdentity: /(^|\s)openid(\s|$)/.test(c.scope),
      // For a Custom provider we cannot know its offline-access convention: send Google's, which
      // others ignore (RFC 6749 section 3.1: unrecognized parameters MUST be ignored), and
      // prompt=consent, so a re-authorization returns a refresh token again.
      extraParams: presetId === 'custom' ? { access_type: 'offline', prompt: 'consent' } : {},
    })
    const now = Date.now()
    const { id } = await this.db
      .insertInto('oauth_authorizations')
      .values({
        state_hash: hashState(request.state),
        session_id: session.sessionId,
        user_id: session.userId,
        server_id: server.id,
        credential_id: c.id,
        code_verifier_enc: 'pending',
        token_url: c.token_url,
        expected_issuer: c.issuer,
        nonce: request.nonce ?? null,
        redirect_uri: this.redirectUri,
        created_at: now,
        expires_at: now + AUTHORIZATION_TTL_MS,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    await this.db
      .updateTable('oauth_authorizations')
      .set({ code_verifier_enc: this.secrets.seal(request.codeVerifier, `oauth_authorizations:${id}:code_verifier`) })
      .where('id', '=', id)
      .execute()
    // Old pending rows are useless; keep the table small.
    await this.db.deleteFrom('oauth_authorizations').where('expires_at', '<', now - 24 * 3600_000).execute()
    this.logger.info({ serverId, credentialId: c.id }, 'authorization started')
    return request.url
  }

  async complete(callbackUrl: URL, session: { userId?: number; sessionId?: string }): Promise<CallbackOutcome> {
    const params = parseCallbackParams(callbackUrl)
    if (!params.state) {
      return { ok: false, code: 'oauth_state_missing', message: 'The sign-in answer has no state: start again from Admin > Support Channel > Emails.' }
    }
    const pending = await this.db.selectFrom('oauth_authorizations').selectAll().where('state_hash', '=', hashState(params.state)).executeTakeFirst()
    if (!pending) {
      return { ok: false, code: 'oauth_state_unknown', message: 'This sign-in answer is not one deskmail asked for (unknown state). Start again from the server list.' }
    }
    if (!session.sessionId || pending.session_id !== session.sessionId || pending.user_id !== session.userId) {
      this.logger.warn({ serverId: pending.server_id }, 'authorization callback from another session refused')
      return { ok: false, code: 'oauth_state_session_mismatch', message: 'This sign-in was started in another browser session. Sign in to deskmail and click Reconnect from the server list.' }
    }
    // Spend the state before anything else: a replayed callback finds it used (single-use, RFC 9700 4.7).
    const spent = await this.db
      .updateTable('oauth_authorizations')
      .set({ used_at: Date.now() })
      .where('id', '=', pending.id)
      .where('used_at', 'is', null)
      .executeTakeFirst()
    const server = await this.servers.get(pending.server_id).catch(() => undefined)
    const base = { serverId: pending.server_id, direction: server?.direction }
    if (Number(spent.numUpdatedRows) !== 1) {
      return { ...base, ok: false, code: 'oauth_state_reused', message: 'This sign-in answer was used already. Click Reconnect to authorize again.' }
    }
    if (pending.expires_at < Date.now()) {
      return { ...base, ok: false, code: 'oauth_state_expired', message: 'The sign-in took too long and expired. Click Reconnect to try again.' }
    }
    if (!server) return { ok: false, code: 'server_not_found', message: 'The server being connected was deleted meanwhile.' }

    const c = await this.credentials.get(pending.credential_id)
    if (!c) return { ...base, ok: false, code: 'credential_not_found', message: 'The OAuth client of this server was deleted meanwhile.' }
    const fail = async (code: string, message: string): Promise<CallbackOutcome> => {
      await this.credentials.setStatus(c.id, c.refresh_token_enc ? c.status : 'pending_authorization', code, message)
      await this.servers.recordStatus(server.id, { ok: false, code: c.refresh_token_enc ? code : 'credential_needs_reauthorization', message })
      this.logger.warn({ serverId: server.id, code }, 'authorization failed')
      return { ...base, ok: false, code, message }
    }

    if (isCallbackError(params)) {
      const err = callbackErrorToAppError(params)
      return fail(err.code, describeOAuthError(err.code, err.details, { redirectUri: this.redirectUri, provider: c.provider }))
    }
    try {
      const tokens = await exchangeAuthorizationCode({
        tokenUrl: pending.token_url,
        clientId: c.client_id,
        clientSecret: this.credentials.clientSecret(c) ?? undefined,
        authMethod: c.auth_method,
        redirectUri: pending.redirect_uri,
        code: (params as any).code,
        codeVerifier: this.secrets.open(pending.code_verifier_enc, `oauth_authorizations:${pending.id}:code_verifier`),
        expectedIssuer: pending.expected_issuer ?? undefined,
        expectedNonce: pending.nonce ?? undefined,
        callbackParams: callbackUrl.searchParams,
        allowedPrivateHosts: this.credentials.allowedPrivateHosts,
      })
      if (!tokens.refreshToken) {
        return fail('oauth_no_refresh_token', describeOAuthError('oauth_no_refresh_token', {}, { redirectUri: this.redirectUri, provider: c.provider }))
      }
      // The account that consented must be the mailbox (or we would read someone else's mail).
      const consented = checkConsentedAccount(tokens.idTokenClaims, server.email_address)?.toLowerCase()
      await this.credentials.storeAuthorization(c.id, tokens, { email: consented ?? null, subject: tokens.idTokenClaims?.sub ?? null })
    } catch (err) {
      if (!isAppError(err)) throw err
      return fail(err.code, describeOAuthError(err.code, err.details, { redirectUri: this.redirectUri, provider: c.provider }))
    }
    // Every server on this credential (an outgoing server may share it) gets a fresh test.
    const result = await this.servers.testConnection(server.id)
    this.logger.info({ serverId: server.id, ok: result.ok, code: result.code }, 'authorization completed')
    return { ...base, ok: result.ok, code: result.code, message: result.ok ? `${server.name} is connected. ${result.message}` : result.message }
  }
}
