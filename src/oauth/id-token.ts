/**
 * The ID token tells deskmail which account consented (PROVIDERS.md: key identity on `sub`,
 * compare `email` with the configured mailbox).
 *
 * Signatures are not verified. The ID token arrives in the token response, over TLS, directly
 * from the token endpoint deskmail called, and OpenID Connect Core 1.0 section 3.1.3.7 item 6
 * allows the TLS server validation to stand in for the signature check in that case. Verifying
 * it would need the provider's JWKS URI, i.e. discovery, which deskmail does not use: endpoints
 * are typed or preset. `aud` (the client ID), `azp`, `exp`, `iat` and, where the provider's issuer
 * is known, `iss` are still checked.
 *
 * @see https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation (item 6)
 */
import { AppError } from '../shared/errors.ts'
import { OAUTH_ERROR_CODES } from './oauth-errors.ts'

/** The claims deskmail keeps from a validated ID token. */
export interface IdTokenClaims {
  /** Stable account identifier at the provider: the key for "same account". */
  sub: string
  email?: string
  email_verified?: boolean
  /** Microsoft puts the sign-in name here when `email` is absent. */
  preferred_username?: string
  iss?: string
  aud?: string | string[]
  /** Microsoft tenant ID. */
  tid?: string
}

/**
 * Issuers that mean the same as a configured one. Google documents that its ID tokens carry
 * either form.
 *
 * @see https://developers.google.com/identity/openid-connect/openid-connect#validatinganidtoken
 */
const ISSUER_ALIASES: Record<string, readonly string[]> = {
  'https://accounts.google.com': ['accounts.google.com'],
}

/**
 * Whether `actual` is the configured issuer. In `expected`, `{tenantid}` stands for the tenant ID
 * (Microsoft's `common` endpoint issues tokens whose `iss` names the user's tenant): it must equal
 * the token's `tid` claim when one is given, and be a GUID otherwise (RFC 9207 `iss` parameter).
 */
export function issuerMatches(expected: string, actual: string, tid?: string): boolean {
  if (expected === actual || ISSUER_ALIASES[expected]?.includes(actual)) return true
  if (!expected.includes('{tenantid}')) return false
  const [before, after] = expected.split('{tenantid}') as [string, string]
  if (!actual.startsWith(before) || !actual.endsWith(after)) return false
  const tenant = actual.slice(before.length, actual.length - after.length)
  if (tid !== undefined) return tenant === tid
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(tenant)
}

/** Decodes a compact JWS without verifying it; `undefined` when it is not one. */
export function decodeJwt(
  jwt: string,
): { header: Record<string, unknown>; claims: Record<string, unknown> } | undefined {
  const parts = jwt.split('.')
  if (parts.length !== 3) return undefined
  try {
    const header: unknown = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'))
    const claims: unknown = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'))
    if (!isObject(header) || !isObject(claims)) return undefined
    return { header, claims }
  } catch {
    return undefined
  }
}

/** Picks the claims deskmail keeps from a validated claim set. */
export function pickIdTokenClaims(claims: Record<string, unknown>): IdTokenClaims {
  const picked: IdTokenClaims = { sub: String(claims.sub) }
  if (typeof claims.email === 'string') picked.email = claims.email
  // Some providers send the boolean as a string.
  if (typeof claims.email_verified === 'boolean') picked.email_verified = claims.email_verified
  else if (claims.email_verified === 'true' || claims.email_verified === 'false') {
    picked.email_verified = claims.email_verified === 'true'
  }
  if (typeof claims.preferred_username === 'string') picked.preferred_username = claims.preferred_username
  if (typeof claims.iss === 'string') picked.iss = claims.iss
  if (typeof claims.aud === 'string' || Array.isArray(claims.aud)) {
    picked.aud = claims.aud as string | string[]
  }
  if (typeof claims.tid === 'string') picked.tid = claims.tid
  return picked
}

/**
 * The account that consented, as an address: `email`, else Microsoft's `preferred_username` when
 * it looks like an address; `undefined` when the ID token does not say (custom providers without
 * OpenID Connect: the IMAP/SMTP login result decides then).
 */
export function consentedAccount(claims: IdTokenClaims | undefined): string | undefined {
  if (!claims) return undefined
  if (claims.email) return claims.email
  if (claims.preferred_username?.includes('@')) return claims.preferred_username
  return undefined
}

/**
 * Checks that the account that consented is the configured mailbox (case-insensitive: providers
 * treat addresses so). For a Microsoft shared mailbox the consenting user legitimately differs:
 * do not call this then, and rely on the IMAP login result.
 *
 * @returns the consenting address, or `undefined` when the ID token does not tell.
 * @throws AppError `oauth_account_mismatch` with `details.signed_in_as` and
 *   `details.expected_account`, also when the provider says the address is not verified.
 */
export function checkConsentedAccount(
  claims: IdTokenClaims | undefined,
  expectedAddress: string,
): string | undefined {
  const account = consentedAccount(claims)
  if (account === undefined) return undefined
  const expected = expectedAddress.trim()
  const details = { signed_in_as: account, expected_account: expected }
  if (claims?.email === account && claims.email_verified === false) {
    throw new AppError(
      OAUTH_ERROR_CODES.accountMismatch,
      `Signed in as ${account}, whose address the provider has not verified; expected ${expected}`,
      { details: { ...details, reason: 'email_unverified' } },
    )
  }
  if (account.toLowerCase() !== expected.toLowerCase()) {
    throw new AppError(
      OAUTH_ERROR_CODES.accountMismatch,
      `Signed in as ${account}, but this server is for ${expected}`,
      { details },
    )
  }
  return account
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
