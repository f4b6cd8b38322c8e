/**
 * Maps what OAuth providers answer (RFC 6749 section 5.2 error bodies, Microsoft's AADSTS codes,
 * Google's `error_subtype`, transport failures) to `AppError`s with stable codes.
 *
 * Rules: a code decides, never error text alone (PROVIDERS.md: "Do not build logic on error text
 * alone where a code exists"); AADSTS codes, `correlation_id` and `trace_id` stay in `details`
 * for logs; no token, code, verifier or client secret ever reaches a message or `details`, and
 * oauth4webapi errors are not kept as `cause` because theirs can hold a whole token response.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 * @see https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
 */
import * as oauth from 'oauth4webapi'
import { AppError } from '../shared/errors.ts'

/** Stable codes of the OAuth client. Each maps to one admin sentence (see `describeOAuthError`). */
export const OAUTH_ERROR_CODES = {
  /** The grant (code or refresh token) is dead: revoked, expired, unused too long. Not transient. */
  invalidGrant: 'oauth_invalid_grant',
  /** Client ID or secret refused, or the client may not use this grant. */
  invalidClient: 'oauth_invalid_client',
  /** The redirect URI is not registered exactly (Google `redirect_uri_mismatch`, AADSTS50011). */
  redirectUriMismatch: 'oauth_redirect_uri_mismatch',
  /** Consent missing (AADSTS65001, `consent_required`). */
  consentRequired: 'oauth_consent_required',
  /** The user declined, or an administrator blocks the app (`admin_policy_enforced`). */
  accessDenied: 'oauth_access_denied',
  /** A code exchange succeeded without a refresh token: deskmail cannot work offline. */
  noRefreshToken: 'oauth_no_refresh_token',
  /** 5xx, 429, network failure or timeout: transient. */
  providerUnavailable: 'oauth_provider_unavailable',
  /** The endpoint answered with a redirect, which is never followed. */
  endpointRedirect: 'oauth_endpoint_redirect',
  /** The answer is not a conforming token response: transient (the grant may still be good). */
  invalidResponse: 'oauth_invalid_response',
  /** The provider refused the requested scope (e.g. the Gmail scope sent to Microsoft). */
  invalidScope: 'oauth_invalid_scope',
  /** RFC 9207 `iss` or ID token `iss` is not the configured provider's (mix-up defence). */
  issuerMismatch: 'oauth_issuer_mismatch',
  /** The consenting account is not the configured mailbox. */
  accountMismatch: 'oauth_account_mismatch',
  /** Any other error returned to the redirect URI. */
  authorizationFailed: 'oauth_authorization_failed',
  /** Any other error returned by the token or revocation endpoint. */
  requestRejected: 'oauth_request_rejected',
} as const

export type OAuthErrorCode = (typeof OAUTH_ERROR_CODES)[keyof typeof OAUTH_ERROR_CODES]

/** What deskmail was doing; kept in `details.operation` because the advice differs. */
export type OAuthOperation = 'authorize' | 'exchange' | 'refresh' | 'revoke'

export interface ErrorContext {
  operation: OAuthOperation
  /** Values that must never appear in a message or detail (secret, tokens, code, verifier). */
  secrets?: ReadonlyArray<string | undefined>
}

// Microsoft AADSTS codes that decide the outcome whatever the `error` value says.
const AADSTS_CODES: Record<number, OAuthErrorCode> = {
  50011: OAUTH_ERROR_CODES.redirectUriMismatch, // redirect URI does not match (case-sensitive)
  65001: OAUTH_ERROR_CODES.consentRequired, // user or administrator has not consented
  700082: OAUTH_ERROR_CODES.invalidGrant, // refresh token expired due to inactivity (90 days)
}

/**
 * Turns an OAuth error (a token-endpoint JSON body, or the error parameters of an authorization
 * response) into an `AppError`.
 */
export function providerErrorToAppError(
  body: Record<string, unknown>,
  ctx: ErrorContext & { httpStatus?: number },
): AppError {
  const error = typeof body.error === 'string' ? body.error : 'unknown_error'
  const rawDescription = typeof body.error_description === 'string' ? body.error_description : undefined
  const aadsts = aadstsCode(body, rawDescription)
  const subtype = stringField(body.error_subtype) ?? stringField(body.suberror)
  const status = ctx.httpStatus
  let code: OAuthErrorCode
  let transient = false
  if (aadsts !== undefined && AADSTS_CODES[aadsts]) {
    code = AADSTS_CODES[aadsts]
  } else if (
    error === 'server_error' ||
    error === 'temporarily_unavailable' ||
    (status !== undefined && (status >= 500 || status === 429))
  ) {
    code = OAUTH_ERROR_CODES.providerUnavailable
    transient = true
  } else {
    const other =
      ctx.operation === 'authorize' ? OAUTH_ERROR_CODES.authorizationFailed : OAUTH_ERROR_CODES.requestRejected
    code = ERROR_VALUES[error] ?? other
  }
  const description = rawDescription === undefined ? undefined : clean(rawDescription, ctx.secrets)
  const where = WHERE[ctx.operation]
  return new AppError(code, `${where}: ${error}${description ? ` (${description})` : ''}`, {
    transient,
    details: {
      operation: ctx.operation,
      http_status: status,
      error: clean(error, ctx.secrets),
      error_description: description,
      error_subtype: subtype === undefined ? undefined : clean(subtype, ctx.secrets),
      aadsts: aadsts === undefined ? undefined : `AADSTS${aadsts}`,
      correlation_id: stringField(body.correlation_id),
      trace_id: stringField(body.trace_id),
    },
  })
}

const ERROR_VALUES: Record<string, OAuthErrorCode> = {
  invalid_grant: OAUTH_ERROR_CODES.invalidGrant,
  // The session must be re-established interactively: same remedy as a dead grant.
  interaction_required: OAUTH_ERROR_CODES.invalidGrant,
  login_required: OAUTH_ERROR_CODES.invalidGrant,
  invalid_client: OAUTH_ERROR_CODES.invalidClient,
  unauthorized_client: OAUTH_ERROR_CODES.invalidClient,
  redirect_uri_mismatch: OAUTH_ERROR_CODES.redirectUriMismatch,
  consent_required: OAUTH_ERROR_CODES.consentRequired,
  access_denied: OAUTH_ERROR_CODES.accessDenied,
  admin_policy_enforced: OAUTH_ERROR_CODES.accessDenied,
  org_internal: OAUTH_ERROR_CODES.accessDenied,
  invalid_scope: OAUTH_ERROR_CODES.invalidScope,
}

const WHERE: Record<OAuthOperation, string> = {
  authorize: 'The provider returned an error to the redirect URI',
  exchange: 'The token endpoint refused the authorization code',
  refresh: 'The token endpoint refused the refresh token',
  revoke: 'The revocation endpoint refused the request',
}

/**
 * Maps anything thrown while talking to a token or revocation endpoint. `AppError`s (from the
 * transport or the endpoint policy) pass through; oauth4webapi's errors are mapped; anything else
 * is a programming error and is returned unchanged for the caller to rethrow.
 */
export async function toOAuthAppError(err: unknown, ctx: ErrorContext): Promise<unknown> {
  if (err instanceof AppError) return err
  if (err instanceof oauth.ResponseBodyError) {
    return providerErrorToAppError(err.cause, { ...ctx, httpStatus: err.status })
  }
  if (err instanceof oauth.WWWAuthenticateChallengeError) {
    // RFC 6749 section 5.2: a failed client authentication may be a 401 with WWW-Authenticate;
    // oauth4webapi stops at the header, the JSON body (with AADSTS codes) is still unread.
    if (err.status >= 500 || err.status === 429) return unavailable(ctx, { http_status: err.status })
    const body = await readErrorBody(err.response)
    const challenge = err.cause[0]?.parameters
    const fallback = err.status === 401 ? 'invalid_client' : (challenge?.error ?? 'invalid_request')
    return providerErrorToAppError(
      body ?? { error: fallback, error_description: challenge?.error_description },
      { ...ctx, httpStatus: err.status },
    )
  }
  if (err instanceof oauth.OperationProcessingError) {
    if (err.code === oauth.RESPONSE_IS_NOT_CONFORM && err.cause instanceof Response) {
      const status = err.cause.status
      if (status >= 500 || status === 429) return unavailable(ctx, { http_status: status })
      return invalidResponse(ctx, `unexpected HTTP status ${status}`, status)
    }
    return invalidResponse(ctx, err.message)
  }
  if (err instanceof oauth.UnsupportedOperationError) return invalidResponse(ctx, err.message)
  return err
}

async function readErrorBody(response: Response): Promise<Record<string, unknown> | undefined> {
  try {
    if (response.bodyUsed) return undefined
    const body: unknown = await response.json()
    const isError =
      typeof body === 'object' && body !== null && typeof (body as { error?: unknown }).error === 'string'
    return isError ? (body as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

/** The transport's failure: network error, timeout, or too large a body. */
export function unavailable(
  ctx: ErrorContext,
  details: Record<string, string | number | undefined>,
  cause?: unknown,
): AppError {
  const reason =
    details.reason === 'timeout'
      ? 'did not answer in time'
      : details.http_status
        ? `answered HTTP ${details.http_status}`
        : `could not be reached${details.reason ? ` (${details.reason})` : ''}`
  return new AppError(OAUTH_ERROR_CODES.providerUnavailable, `The ${ENDPOINT[ctx.operation]} ${reason}`, {
    transient: true,
    cause,
    details: { operation: ctx.operation, ...details },
  })
}

function invalidResponse(ctx: ErrorContext, reason: string, status?: number): AppError {
  return new AppError(
    OAUTH_ERROR_CODES.invalidResponse,
    `The ${ENDPOINT[ctx.operation]} did not answer like an OAuth 2.0 endpoint: ${clean(reason, ctx.secrets)}`,
    // Transient: a proxy page or a hiccup says nothing about the stored grant, which must not be
    // discarded because of it.
    {
      transient: true,
      details: { operation: ctx.operation, http_status: status, reason: clean(reason, ctx.secrets) },
    },
  )
}

const ENDPOINT: Record<OAuthOperation, string> = {
  authorize: 'authorization endpoint',
  exchange: 'token endpoint',
  refresh: 'token endpoint',
  revoke: 'revocation endpoint',
}

function aadstsCode(body: Record<string, unknown>, description: string | undefined): number | undefined {
  if (Array.isArray(body.error_codes) && typeof body.error_codes[0] === 'number') return body.error_codes[0]
  const match = description ? /\bAADSTS(\d+)\b/.exec(description) : null
  return match ? Number(match[1]) : undefined
}

function stringField(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined
}

/**
 * First line only (Microsoft appends trace and correlation IDs, kept separately), at most 300
 * characters, with any secret value blanked in case a provider echoes one.
 */
export function clean(text: string, secrets: ReadonlyArray<string | undefined> = []): string {
  let value = text.split(/\r?\n/, 1)[0]!.trim()
  for (const secret of secrets) {
    if (secret && secret.length >= 4) value = value.split(secret).join('[redacted]')
  }
  return value.length > 300 ? `${value.slice(0, 297)}...` : value
}
