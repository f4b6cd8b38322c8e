/**
 * The front-channel half of the authorization code flow: building the authorization request and
 * reading what the provider sends back to the redirect URI.
 *
 * The caller stores `hashState(state)`, the code verifier, the nonce, the server ID, the token URL
 * and the issuer in one short-lived, single-use pending-authorization record bound to the admin
 * session (PROVIDERS.md, RFC 9700 section 4.7); the callback finds the record by the state's hash
 * and never takes an endpoint from the request.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-2.1
 */
import { createHash } from 'node:crypto'
import * as oauth from 'oauth4webapi'
import type { AppError } from '../shared/errors.ts'
import { parseEndpointUrl } from './endpoint-policy.ts'
import { providerErrorToAppError } from './oauth-errors.ts'
import { getPreset, type PresetId } from './presets.ts'

export interface AuthorizationRequestInput {
  authorizationUrl: string
  clientId: string
  /** The fixed redirect URI from configuration (`https://{server}/oauth/callback`), never request input. */
  redirectUri: string
  /** The Scope field (space-delimited). */
  scope: string
  presetId: PresetId
  /** The mailbox address, so the provider pre-selects the right account. */
  loginHint?: string
  /**
   * Add `openid email` to learn the consenting account. Always on for the Google and Microsoft
   * presets; for `custom` only when the provider supports OpenID Connect. Default false there.
   */
  requestIdentity?: boolean
  /** Further parameters for a custom provider; they cannot override the ones set here. */
  extraParams?: Readonly<Record<string, string>>
}

export interface AuthorizationRequest {
  /** Where to send the admin's browser. */
  url: string
  /** 256 bits from a CSPRNG, base64url. Goes in the URL only; store {@link stateHash}. */
  state: string
  /** `hashState(state)`, the lookup key of the pending authorization. */
  stateHash: string
  /** PKCE verifier (RFC 7636 section 4.1), kept server-side with the pending authorization. */
  codeVerifier: string
  /** OpenID Connect nonce, set when identity scopes are requested; pass it back to the exchange. */
  nonce?: string
  /** The scope actually requested. */
  scope: string
}

/** Parameters the authorization request owns; `extraParams` cannot replace them. */
const RESERVED_PARAMS = new Set([
  'response_type',
  'client_id',
  'redirect_uri',
  'scope',
  'state',
  'code_challenge',
  'code_challenge_method',
  'nonce',
  'login_hint',
])

/**
 * Builds an authorization request: `response_type=code`, a fresh `state`, PKCE with S256 (on
 * every flow, RFC 9700 section 2.1.1), the scopes and parameters that make the provider issue a
 * refresh token (Google `access_type=offline&prompt=consent`; Microsoft `offline_access`), the
 * identity scopes `openid email` where supported, and `login_hint`.
 *
 * @throws AppError `endpoint_invalid_url` when the authorization URL is not an absolute http(s)
 *   URL without fragment (RFC 6749 section 3.1); the full policy runs when the URL is saved.
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.2 (S256)
 * @see https://developers.google.com/identity/protocols/oauth2/web-server#creatingclient
 */
export function createAuthorizationRequest(input: AuthorizationRequestInput): AuthorizationRequest {
  const preset = getPreset(input.presetId)
  const url = parseEndpointUrl(input.authorizationUrl, 'authorization')
  const requestIdentity =
    preset.id === 'custom' ? input.requestIdentity === true : preset.identityScopes.length > 0
  const scope = buildScope(input.presetId, input.scope, requestIdentity)

  const state = oauth.generateRandomState()
  const codeVerifier = oauth.generateRandomCodeVerifier()
  const nonce = requestIdentity ? oauth.generateRandomNonce() : undefined

  const params = url.searchParams
  params.set('response_type', 'code')
  params.set('client_id', input.clientId)
  params.set('redirect_uri', input.redirectUri)
  params.set('scope', scope)
  params.set('state', state)
  params.set('code_challenge', pkceChallenge(codeVerifier))
  params.set('code_challenge_method', 'S256')
  if (nonce) params.set('nonce', nonce)
  const loginHint = input.loginHint?.trim()
  if (loginHint) params.set('login_hint', loginHint)
  for (const [name, value] of Object.entries({ ...preset.authorizationParams, ...input.extraParams })) {
    if (!RESERVED_PARAMS.has(name)) params.set(name, value)
  }

  const request: AuthorizationRequest = {
    url: url.href,
    state,
    stateHash: hashState(state),
    codeVerifier,
    scope,
  }
  if (nonce) request.nonce = nonce
  return request
}

/**
 * The scope to request: the admin's scope, plus what the preset needs, without duplicates and in
 * a stable order. Microsoft presets get `offline_access` (no refresh token without it);
 * identity scopes are added when requested.
 */
export function buildScope(presetId: PresetId, scope: string, requestIdentity: boolean): string {
  const preset = getPreset(presetId)
  const scopes = scope.split(/\s+/).filter(Boolean)
  scopes.push(...preset.requiredScopes)
  if (requestIdentity) {
    scopes.push(...(preset.identityScopes.length > 0 ? preset.identityScopes : ['openid', 'email']))
  }
  return [...new Set(scopes)].join(' ')
}

/**
 * The value to store and look up instead of the state itself: a database reader cannot replay a
 * state from it. SHA-256, base64url.
 */
export function hashState(state: string): string {
  return createHash('sha256').update(state, 'utf8').digest('base64url')
}

/** RFC 7636 section 4.2: `BASE64URL(SHA256(ASCII(code_verifier)))`. */
function pkceChallenge(codeVerifier: string): string {
  return createHash('sha256').update(codeVerifier, 'ascii').digest('base64url')
}

export interface CallbackSuccess {
  code: string
  state: string
  /** RFC 9207 issuer identifier, when the provider sends one. */
  iss?: string
}

export interface CallbackError {
  error: string
  errorDescription?: string
  errorUri?: string
  state?: string
  iss?: string
}

export type CallbackParams = CallbackSuccess | CallbackError

export function isCallbackError(params: CallbackParams): params is CallbackError {
  return 'error' in params
}

/**
 * Reads the redirect URI's query. An error response wins over a code; a missing `state` or
 * `code`, or a parameter given twice (RFC 6749 section 3.1: "MUST NOT be included more than
 * once"), yields `{ error: 'invalid_request' }`. The caller then looks the pending authorization
 * up by `hashState(state)`: that lookup is the state check.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 * @see https://www.rfc-editor.org/rfc/rfc9207#section-2
 */
export function parseCallbackParams(url: URL): CallbackParams {
  const params = url.searchParams
  for (const name of ['code', 'state', 'iss', 'error', 'error_description', 'error_uri']) {
    if (params.getAll(name).length > 1) {
      return withOptional(
        { error: 'invalid_request', errorDescription: `The parameter "${name}" appears more than once` },
        params,
      )
    }
  }
  // RFC 6749 section 3.1: parameters sent without a value are treated as omitted.
  const get = (name: string) => params.get(name) || undefined
  const error = get('error')
  if (error) {
    const result: CallbackError = { error }
    const description = get('error_description')
    const uri = get('error_uri')
    if (description) result.errorDescription = description
    if (uri) result.errorUri = uri
    return withOptional(result, params)
  }
  const code = get('code')
  const state = get('state')
  if (!state) return { error: 'invalid_request', errorDescription: 'The callback has no state parameter' }
  if (!code) {
    const missing: CallbackError = { error: 'invalid_request', errorDescription: 'The callback has no code parameter' }
    return withOptional(missing, params)
  }
  const result: CallbackSuccess = { code, state }
  const iss = get('iss')
  if (iss) result.iss = iss
  return result
}

function withOptional(result: CallbackError, params: URLSearchParams): CallbackError {
  const state = params.getAll('state')
  const iss = params.getAll('iss')
  if (state.length === 1 && state[0]) result.state = state[0]
  if (iss.length === 1 && iss[0]) result.iss = iss[0]
  return result
}

/**
 * The `AppError` for an error sent to the redirect URI (e.g. `access_denied` when the admin
 * clicked Cancel, `consent_required`, AADSTS65001).
 */
export function callbackErrorToAppError(params: CallbackError): AppError {
  return providerErrorToAppError(
    { error: params.error, error_description: params.errorDescription },
    { operation: 'authorize' },
  )
}
