/**
 * Provider presets that pre-fill the five OAuth fields (Client ID and Secret excepted) and the
 * mail hosts of the Add Incoming/Outgoing Email Server form. Every value comes from
 * /work/shared/PROVIDERS.md, which cites the provider documents.
 *
 * Unlike the help page deskmail's flow is modelled on, the Microsoft presets use Microsoft's own
 * scopes with `offline_access`: the Gmail scope means nothing to Microsoft's token endpoint.
 *
 * @see https://developers.google.com/identity/protocols/oauth2/web-server
 * @see https://learn.microsoft.com/en-us/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth
 */
import { AppError } from '../shared/errors.ts'

export type PresetId = 'gmail' | 'microsoft365' | 'outlook_legacy' | 'custom'
export type MailProtocol = 'imap' | 'pop3' | 'smtp'
/** `tls`: TLS from the first byte (993, 995, 465); `starttls`: upgrade after connecting (587). */
export type MailSecurity = 'tls' | 'starttls'
/** How the client authenticates at the token endpoint (RFC 6749 section 2.3.1). */
export type ClientAuthMethod = 'client_secret_post' | 'client_secret_basic'

export interface MailEndpoint {
  readonly host: string
  readonly port: number
  readonly security: MailSecurity
}

export interface ProviderEndpoints {
  readonly authorizationUrl: string
  readonly tokenUrl: string
  /** RFC 7009 endpoint; absent when the provider has none (Microsoft: delete tokens locally). */
  readonly revocationUrl?: string
  /**
   * The ID token `iss` to expect. `{tenantid}` stands for the ID token's `tid` claim: with the
   * `common`, `organizations` and `consumers` tenants Microsoft issues tenant-specific issuers.
   */
  readonly issuer?: string
}

export interface ProviderPreset extends ProviderEndpoints {
  readonly id: PresetId
  readonly label: string
  /** The endpoints for a tenant; only `microsoft365` uses the argument (default `common`). */
  readonly endpoints: (tenant?: string) => ProviderEndpoints
  /** Default tenant, for presets whose endpoints depend on one. */
  readonly defaultTenant?: string
  /** The Scope field's default per protocol (space-delimited, as sent in `scope=`). */
  readonly scopes: Readonly<Record<MailProtocol, string>>
  /** Scopes always requested, whatever the Scope field says (Microsoft: `offline_access`). */
  readonly requiredScopes: readonly string[]
  /** Scopes added to learn which account consented (OpenID Connect); empty when unsupported. */
  readonly identityScopes: readonly string[]
  /** Extra authorization request parameters needed for a refresh token. */
  readonly authorizationParams: Readonly<Record<string, string>>
  /** The provider issues a new refresh token on every refresh: store it atomically. */
  readonly rotatesRefreshTokens: boolean
  readonly hosts: Readonly<Partial<Record<MailProtocol, MailEndpoint>>>
  readonly defaultAuthMethod: ClientAuthMethod
}

const GOOGLE_MAIL_SCOPE = 'https://mail.google.com/'
const IDENTITY_SCOPES = ['openid', 'email'] as const

/** Microsoft's per-protocol scopes, each with `offline_access` so that a refresh token is issued. */
export const MICROSOFT_SCOPES: Readonly<Record<MailProtocol, string>> = {
  imap: 'https://outlook.office.com/IMAP.AccessAsUser.All offline_access',
  pop3: 'https://outlook.office.com/POP.AccessAsUser.All offline_access',
  smtp: 'https://outlook.office.com/SMTP.Send offline_access',
}

const MICROSOFT_TENANT = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?$/
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * Microsoft identity platform v2.0 endpoints for a tenant (`common`, `organizations`,
 * `consumers`, a tenant ID or a verified domain).
 *
 * @see https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols#endpoints
 */
export function microsoftEndpoints(tenant = 'common'): ProviderEndpoints {
  const value = tenant.trim() || 'common'
  if (!MICROSOFT_TENANT.test(value)) {
    throw new AppError(
      'oauth_invalid_tenant',
      `"${tenant}" is not a Microsoft tenant (use common, a tenant ID or a domain)`,
      { details: { tenant } },
    )
  }
  const base = `https://login.microsoftonline.com/${encodeURIComponent(value)}/oauth2/v2.0`
  return {
    authorizationUrl: `${base}/authorize`,
    tokenUrl: `${base}/token`,
    // A tenant ID pins the issuer; any other tenant value yields the signed-in user's tenant.
    issuer: `https://login.microsoftonline.com/${GUID.test(value) ? value.toLowerCase() : '{tenantid}'}/v2.0`,
  }
}

const gmailEndpoints: ProviderEndpoints = {
  authorizationUrl: 'https://accounts.google.com/o/oauth2/v2/auth',
  tokenUrl: 'https://oauth2.googleapis.com/token',
  revocationUrl: 'https://oauth2.googleapis.com/revoke',
  issuer: 'https://accounts.google.com',
}

const outlookLegacyEndpoints: ProviderEndpoints = {
  authorizationUrl: 'https://login.live.com/oauth20_authorize.srf',
  tokenUrl: 'https://login.live.com/oauth20_token.srf',
}

const customEndpoints: ProviderEndpoints = { authorizationUrl: '', tokenUrl: '' }

const gmail: ProviderPreset = {
  id: 'gmail',
  label: 'Gmail / Google Workspace',
  ...gmailEndpoints,
  endpoints: () => gmailEndpoints,
  // One scope covers IMAP, POP and SMTP.
  scopes: { imap: GOOGLE_MAIL_SCOPE, pop3: GOOGLE_MAIL_SCOPE, smtp: GOOGLE_MAIL_SCOPE },
  requiredScopes: [],
  identityScopes: IDENTITY_SCOPES,
  // Google returns a refresh token only with access_type=offline, and on a repeated consent
  // only with prompt=consent.
  authorizationParams: { access_type: 'offline', prompt: 'consent' },
  rotatesRefreshTokens: false,
  hosts: {
    imap: { host: 'imap.gmail.com', port: 993, security: 'tls' },
    pop3: { host: 'pop.gmail.com', port: 995, security: 'tls' },
    smtp: { host: 'smtp.gmail.com', port: 465, security: 'tls' },
  },
  defaultAuthMethod: 'client_secret_post',
}

/** What Microsoft 365 and Outlook.com share: the scopes, offline_access, rotating refresh tokens. */
const microsoftCommon = {
  scopes: MICROSOFT_SCOPES,
  // Without offline_access Microsoft issues no refresh token.
  requiredScopes: ['offline_access'],
  identityScopes: IDENTITY_SCOPES,
} as const

const microsoft365: ProviderPreset = {
  id: 'microsoft365',
  label: 'Microsoft 365',
  ...microsoftEndpoints('common'),
  endpoints: (tenant) => microsoftEndpoints(tenant),
  defaultTenant: 'common',
  ...microsoftCommon,
  // offline_access in the scope is what yields a refresh token; no extra parameter needed.
  authorizationParams: {},
  rotatesRefreshTokens: true,
  hosts: {
    imap: { host: 'outlook.office365.com', port: 993, security: 'tls' },
    pop3: { host: 'outlook.office365.com', port: 995, security: 'tls' },
    smtp: { host: 'smtp.office365.com', port: 587, security: 'starttls' },
  },
  defaultAuthMethod: 'client_secret_post',
}

const outlookLegacy: ProviderPreset = {
  id: 'outlook_legacy',
  label: 'Outlook.com (legacy Live)',
  ...outlookLegacyEndpoints,
  endpoints: () => outlookLegacyEndpoints,
  ...microsoftCommon,
  authorizationParams: {},
  rotatesRefreshTokens: true,
  hosts: {
    imap: { host: 'outlook.office365.com', port: 993, security: 'tls' },
    pop3: { host: 'outlook.office365.com', port: 995, security: 'tls' },
    smtp: { host: 'smtp-mail.outlook.com', port: 587, security: 'starttls' },
  },
  defaultAuthMethod: 'client_secret_post',
}

const custom: ProviderPreset = {
  id: 'custom',
  label: 'Custom',
  ...customEndpoints,
  endpoints: () => customEndpoints,
  scopes: { imap: '', pop3: '', smtp: '' },
  requiredScopes: [],
  identityScopes: [],
  authorizationParams: {},
  rotatesRefreshTokens: false,
  hosts: {},
  defaultAuthMethod: 'client_secret_post',
}

/** All presets, in the order the form lists them. */
export const providerPresets: readonly ProviderPreset[] = Object.freeze([
  gmail,
  microsoft365,
  outlookLegacy,
  custom,
])

export const PRESET_IDS: readonly PresetId[] = providerPresets.map((preset) => preset.id)

export function isPresetId(value: unknown): value is PresetId {
  return typeof value === 'string' && (PRESET_IDS as readonly string[]).includes(value)
}

/** @throws AppError `oauth_unknown_preset` */
export function getPreset(id: string): ProviderPreset {
  const preset = providerPresets.find((candidate) => candidate.id === id)
  if (!preset) {
    throw new AppError('oauth_unknown_preset', `Unknown provider preset "${id}"`, { details: { preset: id } })
  }
  return preset
}

/** The Scope field's default for a preset and protocol (`''` for `custom`). */
export function defaultScopeFor(presetId: PresetId, protocol: MailProtocol): string {
  return getPreset(presetId).scopes[protocol]
}

/** What the browser form needs to pre-fill its fields: plain JSON, no functions. */
export interface PresetFormData {
  id: PresetId
  label: string
  authorizationUrl: string
  tokenUrl: string
  revocationUrl: string | null
  /** For tenant-dependent presets: URLs with `{tenant}` to substitute, and the default tenant. */
  tenant: { default: string; authorizationUrlTemplate: string; tokenUrlTemplate: string } | null
  scopes: Record<MailProtocol, string>
  identityScopes: string[]
  hosts: Partial<Record<MailProtocol, { host: string; port: number; security: MailSecurity }>>
  rotatesRefreshTokens: boolean
  authMethod: ClientAuthMethod
}

/** A JSON-serializable copy of {@link providerPresets} for the browser form. */
export function presetFormData(): PresetFormData[] {
  return providerPresets.map((preset) => ({
    id: preset.id,
    label: preset.label,
    authorizationUrl: preset.authorizationUrl,
    tokenUrl: preset.tokenUrl,
    revocationUrl: preset.revocationUrl ?? null,
    tenant:
      preset.defaultTenant === undefined
        ? null
        : {
            default: preset.defaultTenant,
            authorizationUrlTemplate: 'https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize',
            tokenUrlTemplate: 'https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token',
          },
    scopes: { ...preset.scopes },
    identityScopes: [...preset.identityScopes],
    hosts: Object.fromEntries(
      Object.entries(preset.hosts).map(([protocol, endpoint]) => [protocol, { ...endpoint }]),
    ),
    rotatesRefreshTokens: preset.rotatesRefreshTokens,
    authMethod: preset.defaultAuthMethod,
  }))
}
