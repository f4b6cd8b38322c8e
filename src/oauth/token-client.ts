/**
 * The back-channel half: authorization code exchange, refresh and revocation, on oauth4webapi
 * with endpoints given by hand (no discovery) and client_secret_post (default) or
 * client_secret_basic authentication.
 *
 * In oauth4webapi's style every operation is a pair, `request...` (sends, returns the raw
 * `Response`) and `process...` (validates, returns a {@link TokenSet} or throws an `AppError`),
 * with a convenience function calling both. All requests go through the guarded transport
 * (endpoint policy checked at connect time, redirects refused, one deadline).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3 (code exchange)
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-6 (refresh)
 * @see https://www.rfc-editor.org/rfc/rfc7009 (revocation)
 */
import * as oauth from 'oauth4webapi'
import { AppError } from '../shared/errors.ts'
import {
  ALLOWED_PRIVATE_HOSTS_ENV,
  parseAllowedPrivateHosts,
  parseEndpointUrl,
  type EndpointPurpose,
} from './endpoint-policy.ts'
import { createGuardedFetch } from './guarded-fetch.ts'
import { decodeJwt, issuerMatches, pickIdTokenClaims, type IdTokenClaims } from './id-token.ts'
import { OAUTH_ERROR_CODES, toOAuthAppError, type ErrorContext, type OAuthOperation } from './oauth-errors.ts'
import type { ClientAuthMethod } from './presets.ts'

/** Tokens from one token response. */
export interface TokenSet {
  accessToken: string
  /** Lower case, as oauth4webapi normalizes it (`bearer`). */
  tokenType: string
  /**
   * Set when the provider issued one. On refresh this is a rotated refresh token (Microsoft
   * rotates on every use): store it in the same transaction as the access token. When absent
   * after a refresh, keep the old one (Google does not rotate).
   */
  refreshToken?: string
  /** Computed from `expires_in` when the response arrived. */
  expiresAt: Date
  /** The granted scope when the provider says (RFC 6749 section 5.1). */
  scope?: string
  /** From the ID token of a code exchange, when identity scopes were requested. */
  idTokenClaims?: IdTokenClaims
}

/** Transport settings shared by every request. */
export interface TokenEndpointOptions {
  /** Deadline for the whole request, default 15 s. */
  timeoutMs?: number
  /**
   * Hosts, addresses and CIDR ranges exempt from the endpoint policy. Default:
   * `parseAllowedPrivateHosts(process.env.DESKMAIL_ALLOWED_PRIVATE_HOSTS)`, read on each call.
   */
  allowedPrivateHosts?: readonly string[]
}

export interface ClientCredentials {
  clientId: string
  /**
   * The client secret. Without one the client authenticates as a public client (`client_id` in
   * the body, RFC 6749 section 2.1); PKCE still binds the code.
   */
  clientSecret?: string | undefined
  /** Default `client_secret_post`. */
  authMethod?: ClientAuthMethod
}

export interface AuthorizationCodeExchangeInput extends ClientCredentials, TokenEndpointOptions {
  /** From the pending-authorization record, never from the callback request. */
  tokenUrl: string
  /** The same redirect URI as in the authorization request (RFC 6749 section 4.1.3). */
  redirectUri: string
  code: string
  codeVerifier: string
  /**
   * The provider's issuer (preset `issuer`; `{tenantid}` allowed). Checked against the callback's
   * RFC 9207 `iss` and the ID token's `iss`. Without it neither can be checked.
   */
  expectedIssuer?: string
  /**
   * The nonce returned by `createAuthorizationRequest`. When omitted the nonce is not checked
   * (PKCE already binds the code to this flow, RFC 9700 section 2.1.1).
   */
  expectedNonce?: string
  /**
   * The callback's parameters (`parseCallbackParams` result, `URLSearchParams` or the callback
   * `URL`): their `iss`, if any, is checked against `expectedIssuer` (RFC 9207).
   */
  callbackParams?: URLSearchParams | URL | { iss?: string | undefined }
  /** Refuse a response without a refresh token (`oauth_no_refresh_token`). Default true. */
  requireRefreshToken?: boolean
}

export interface RefreshInput extends ClientCredentials, TokenEndpointOptions {
  tokenUrl: string
  refreshToken: string
  /** Microsoft recommends sending the scope on refresh; optional elsewhere (RFC 6749 section 6). */
  scope?: string
}

export interface RevocationInput extends ClientCredentials, TokenEndpointOptions {
  revocationUrl: string
  token: string
  tokenTypeHint?: 'refresh_token' | 'access_token'
}

const DEFAULT_TIMEOUT_MS = 15_000
/**
 * RFC 6749 section 5.1 only recommends `expires_in`. Without it, assume a short lifetime: an
 * early refresh costs one request, a late one costs a failed mail login.
 */
const DEFAULT_EXPIRES_IN_SECONDS = 600
/**
 * ID token `exp`/`iat` tolerance. The token comes straight from the provider over TLS, so a host
 * clock a few minutes off must not break a connection.
 */
const ID_TOKEN_CLOCK_TOLERANCE_SECONDS = 300

// ---------------------------------------------------------------------------------------------
// Authorization code

/**
 * Sends the authorization code grant with the PKCE verifier. Checks the callback's RFC 9207 `iss`
 * first when the provider sent one and the issuer is known (mix-up defence, RFC 9700 section 4.4).
 */
export async function requestAuthorizationCodeGrant(
  input: AuthorizationCodeExchangeInput,
): Promise<Response> {
  const ctx = errorContext('exchange', input, [input.code, input.codeVerifier])
  try {
    const callbackIss = callbackIssuer(input.callbackParams)
    if (callbackIss && input.expectedIssuer && !issuerMatches(input.expectedIssuer, callbackIss)) {
      throw issuerMismatch('authorization response', callbackIss, input.expectedIssuer)
    }
    const setup = prepare(input.tokenUrl, 'token', 'exchange', input)
    // The state was checked by finding the pending authorization through hashState(state), and
    // the `iss` just above; oauth4webapi only needs the validated parameters it hands out.
    const params = oauth.validateAuthResponse(
      setup.as,
      setup.client,
      new URLSearchParams({ code: input.code }),
      oauth.skipStateCheck,
    )
    return await oauth.authorizationCodeGrantRequest(
      setup.as,
      setup.client,
      setup.auth,
      params,
      input.redirectUri,
      input.codeVerifier,
      setup.options,
    )
  } catch (err) {
    throw await toOAuthAppError(err, ctx)
  }
}

/**
 * Validates the token response of a code exchange: status, error body, `access_token`,
 * `token_type`, `expires_in`, and the ID token's `aud` (the client ID), `azp`, `exp`, `iat`,
 * `nonce` and `iss` (when the issuer is known). The signature is not verified (see `id-token.ts`,
 * OpenID Connect Core 1.0 section 3.1.3.7 item 6).
 */
export async function processAuthorizationCodeGrant(
  input: AuthorizationCodeExchangeInput,
  response: Response,
): Promise<TokenSet> {
  const ctx = errorContext('exchange', input, [input.code, input.codeVerifier])
  try {
    const setup = prepare(input.tokenUrl, 'token', 'exchange', input)
    const { response: readable, json } = await reread(response, 'exchange')
    let as = setup.as
    const client: oauth.Client = { ...setup.client, [oauth.clockTolerance]: ID_TOKEN_CLOCK_TOLERANCE_SECONDS }
    let nonce: string | typeof oauth.expectNoNonce = input.expectedNonce ?? oauth.expectNoNonce
    const decoded = typeof json?.id_token === 'string' ? decodeJwt(json.id_token) : undefined
    if (decoded) {
      const { alg } = decoded.header
      if (typeof alg !== 'string' || alg === 'none') throw invalidIdToken('the ID token is not signed')
      // No key to verify with (no discovery); accept the algorithm the token names.
      client.id_token_signed_response_alg = alg
      const { iss, tid, nonce: tokenNonce } = decoded.claims
      if (typeof iss === 'string') {
        const tenant = typeof tid === 'string' ? tid : undefined
        if (input.expectedIssuer && !issuerMatches(input.expectedIssuer, iss, tenant)) {
          throw issuerMismatch('ID token', iss, input.expectedIssuer)
        }
        // Checked above (or unknowable for a custom provider); oauth4webapi compares it exactly.
        as = { ...as, issuer: iss }
      }
      if (input.expectedNonce === undefined && typeof tokenNonce === 'string') nonce = tokenNonce
    }
    const result = await oauth.processAuthorizationCodeResponse(as, client, readable, {
      expectedNonce: nonce,
    })
    const tokens = toTokenSet(result)
    const claims = oauth.getValidatedIdTokenClaims(result)
    if (claims) tokens.idTokenClaims = pickIdTokenClaims(claims)
    if (!tokens.refreshToken && input.requireRefreshToken !== false) {
      throw new AppError(
        OAUTH_ERROR_CODES.noRefreshToken,
        'The token endpoint returned no refresh token, so deskmail cannot reach the mailbox after the access token expires',
        {
          details: {
            operation: 'exchange',
            signed_in_as: tokens.idTokenClaims?.email ?? tokens.idTokenClaims?.preferred_username,
            scope: tokens.scope,
          },
        },
      )
    }
    return tokens
  } catch (err) {
    throw await toOAuthAppError(err, ctx)
  }
}

/**
 * Exchanges the authorization code for tokens: {@link requestAuthorizationCodeGrant} then
 * {@link processAuthorizationCodeGrant}.
 *
 * @throws AppError `oauth_invalid_grant` (code expired, reused or PKCE mismatch),
 *   `oauth_redirect_uri_mismatch`, `oauth_invalid_client`, `oauth_consent_required`,
 *   `oauth_issuer_mismatch`, `oauth_no_refresh_token`, `oauth_provider_unavailable`, ...
 */
export async function exchangeAuthorizationCode(input: AuthorizationCodeExchangeInput): Promise<TokenSet> {
  return processAuthorizationCodeGrant(input, await requestAuthorizationCodeGrant(input))
}

// ---------------------------------------------------------------------------------------------
// Refresh

/** Sends the refresh token grant (RFC 6749 section 6). */
export async function requestRefreshGrant(input: RefreshInput): Promise<Response> {
  const ctx = errorContext('refresh', input, [input.refreshToken])
  try {
    const setup = prepare(input.tokenUrl, 'token', 'refresh', input)
    const options = input.scope
      ? { ...setup.options, additionalParameters: { scope: input.scope } }
      : setup.options
    return await oauth.refreshTokenGrantRequest(
      setup.as,
      setup.client,
      setup.auth,
      input.refreshToken,
      options,
    )
  } catch (err) {
    throw await toOAuthAppError(err, ctx)
  }
}

/**
 * Validates a refresh response. An ID token in it is ignored: identity was established at the
 * code exchange, and OpenID Connect Core section 12.2 makes it optional here; validating it
 * could only turn a good refresh into a failure.
 */
export async function processRefreshGrant(input: RefreshInput, response: Response): Promise<TokenSet> {
  const ctx = errorContext('refresh', input, [input.refreshToken])
  try {
    const setup = prepare(input.tokenUrl, 'token', 'refresh', input)
    const { response: readable } = await reread(response, 'refresh')
    return toTokenSet(await oauth.processRefreshTokenResponse(setup.as, setup.client, readable))
  } catch (err) {
    throw await toOAuthAppError(err, ctx)
  }
}

/**
 * Refreshes the access token. A rotated refresh token appears in `refreshToken`.
 *
 * @throws AppError `oauth_invalid_grant` (not transient: revoked, expired, AADSTS700082, Google
 *   `invalid_rapt` in `details.error_subtype`), `oauth_invalid_client`,
 *   `oauth_provider_unavailable` (transient), `oauth_endpoint_redirect`, `oauth_invalid_response`, ...
 */
export async function refreshAccessToken(input: RefreshInput): Promise<TokenSet> {
  return processRefreshGrant(input, await requestRefreshGrant(input))
}

// ---------------------------------------------------------------------------------------------
// Revocation

/** Sends an RFC 7009 revocation request. */
export async function requestRevocation(input: RevocationInput): Promise<Response> {
  const ctx = errorContext('revoke', input, [input.token])
  try {
    const setup = prepare(input.revocationUrl, 'revocation', 'revoke', input)
    const options = input.tokenTypeHint
      ? { ...setup.options, additionalParameters: { token_type_hint: input.tokenTypeHint } }
      : setup.options
    return await oauth.revocationRequest(setup.as, setup.client, setup.auth, input.token, options)
  } catch (err) {
    throw await toOAuthAppError(err, ctx)
  }
}

/**
 * Validates a revocation response. `invalid_token` counts as success: the token is dead either
 * way (RFC 7009 section 2.2 says the server answers 200 for an invalid token; Google answers 400
 * `invalid_token` instead).
 */
export async function processRevocation(input: RevocationInput, response: Response): Promise<void> {
  const ctx = errorContext('revoke', input, [input.token])
  try {
    await oauth.processRevocationResponse(response)
  } catch (err) {
    if (err instanceof oauth.ResponseBodyError && err.error === 'invalid_token') return
    throw await toOAuthAppError(err, ctx)
  }
}

/**
 * Revokes a token. With Google, revoking one token revokes the project's whole grant for the
 * user, for every client of the project: warn the admin first when servers share a client.
 */
export async function revokeToken(input: RevocationInput): Promise<void> {
  return processRevocation(input, await requestRevocation(input))
}

// ---------------------------------------------------------------------------------------------

interface Setup {
  as: oauth.AuthorizationServer
  client: oauth.Client
  auth: oauth.ClientAuth
  options: oauth.TokenEndpointRequestOptions
}

function prepare(
  endpoint: string,
  purpose: EndpointPurpose,
  operation: OAuthOperation,
  input: ClientCredentials & TokenEndpointOptions & { expectedIssuer?: string },
): Setup {
  const url = parseEndpointUrl(endpoint, purpose)
  if (!input.clientId) throw configError('The Client ID is empty', 'client_id')
  const as: oauth.AuthorizationServer = {
    // Replaced by the ID token's verified `iss` when there is one; never used otherwise.
    issuer: input.expectedIssuer ?? url.origin,
    [purpose === 'revocation' ? 'revocation_endpoint' : 'token_endpoint']: url.href,
  }
  const client: oauth.Client = { client_id: input.clientId }
  const auth = !input.clientSecret
    ? oauth.None()
    : input.authMethod === 'client_secret_basic'
      ? oauth.ClientSecretBasic(input.clientSecret)
      : oauth.ClientSecretPost(input.clientSecret)
  const guardedFetch = createGuardedFetch({
    timeoutMs: input.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    allowedPrivateHosts:
      input.allowedPrivateHosts ?? parseAllowedPrivateHosts(process.env[ALLOWED_PRIVATE_HOSTS_ENV]),
    purpose,
    operation,
  })
  const options: oauth.TokenEndpointRequestOptions = {
    [oauth.customFetch]: guardedFetch,
    // The guarded transport has already refused plain http unless the host is an allowed
    // loopback host; oauth4webapi's own https rule would refuse development stand-ins.
    [oauth.allowInsecureRequests]: url.protocol === 'http:',
  }
  return { as, client, auth, options }
}

/**
 * Reads a 200 response once so that it can be adjusted before oauth4webapi validates it: a
 * missing `token_type` is taken as `Bearer` (the only type mail servers accept; some custom
 * providers omit it), and a refresh response's ID token is dropped. Error responses pass through
 * untouched.
 */
async function reread(
  response: Response,
  operation: OAuthOperation,
): Promise<{ response: Response; json?: Record<string, unknown> }> {
  if (response.status !== 200) return { response }
  const text = await response.text()
  const headers = new Headers(response.headers)
  headers.delete('content-length')
  headers.delete('content-encoding')
  const init = { status: response.status, statusText: response.statusText, headers }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return { response: new Response(text, init) }
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { response: new Response(text, init) }
  }
  const body = json as Record<string, unknown>
  if (body.token_type === undefined && typeof body.access_token === 'string') body.token_type = 'Bearer'
  if (operation === 'refresh') delete body.id_token
  return { response: new Response(JSON.stringify(body), init), json: body }
}

function callbackIssuer(params: AuthorizationCodeExchangeInput['callbackParams']): string | undefined {
  if (params === undefined) return undefined
  if (params instanceof URL) return params.searchParams.get('iss') || undefined
  if (params instanceof URLSearchParams) return params.get('iss') || undefined
  return params.iss || undefined
}

function toTokenSet(result: oauth.TokenEndpointResponse): TokenSet {
  const expiresIn = result.expires_in ?? DEFAULT_EXPIRES_IN_SECONDS
  const tokens: TokenSet = {
    accessToken: result.access_token,
    tokenType: result.token_type,
    expiresAt: new Date(Date.now() + expiresIn * 1000),
  }
  if (result.refresh_token) tokens.refreshToken = result.refresh_token
  if (result.scope) tokens.scope = result.scope
  return tokens
}

function errorContext(
  operation: OAuthOperation,
  input: ClientCredentials,
  values: ReadonlyArray<string | undefined>,
): ErrorContext {
  return { operation, secrets: [input.clientSecret, ...values] }
}

function issuerMismatch(where: string, actual: string, expected: string): AppError {
  return new AppError(
    OAUTH_ERROR_CODES.issuerMismatch,
    `The ${where} comes from issuer ${actual}, not from the configured provider ${expected}`,
    { details: { issuer: actual, expected_issuer: expected } },
  )
}

function invalidIdToken(reason: string): AppError {
  return new AppError(
    OAUTH_ERROR_CODES.invalidResponse,
    `The token endpoint returned an unusable ID token: ${reason}`,
    { details: { operation: 'exchange', reason } },
  )
}

function configError(message: string, field: string): AppError {
  return new AppError(OAUTH_ERROR_CODES.invalidClient, message, { details: { field } })
}
