/**
 * The OAuth 2.0 client of deskmail: provider presets, the Google client JSON, the endpoint
 * policy, the authorization request and callback, the token client and the admin messages.
 * The credential store (`credential-store.ts`) builds on these.
 */
export {
  MICROSOFT_SCOPES,
  PRESET_IDS,
  defaultScopeFor,
  getPreset,
  isPresetId,
  microsoftEndpoints,
  presetFormData,
  providerPresets,
} from './presets.ts'
export type {
  ClientAuthMethod,
  MailEndpoint,
  MailProtocol,
  MailSecurity,
  PresetFormData,
  PresetId,
  ProviderEndpoints,
  ProviderPreset,
} from './presets.ts'

export { GOOGLE_JSON_ERROR_CODES, checkRedirectUriRegistered, parseGoogleClientJson } from './google-client-json.ts'
export type { GoogleClientConfig } from './google-client-json.ts'

export {
  ALLOWED_PRIVATE_HOSTS_ENV,
  ENDPOINT_ERROR_CODES,
  addressRange,
  checkEndpointUrl,
  checkMailHost,
  parseAllowedPrivateHosts,
  parseEndpointUrl,
} from './endpoint-policy.ts'
export type { EndpointPolicyOptions, EndpointPurpose, HostPolicyOptions, LookupFunction } from './endpoint-policy.ts'

export {
  buildScope,
  callbackErrorToAppError,
  createAuthorizationRequest,
  hashState,
  isCallbackError,
  parseCallbackParams,
} from './authorization.ts'
export type {
  AuthorizationRequest,
  AuthorizationRequestInput,
  CallbackError,
  CallbackParams,
  CallbackSuccess,
} from './authorization.ts'

export {
  exchangeAuthorizationCode,
  processAuthorizationCodeGrant,
  processRefreshGrant,
  processRevocation,
  refreshAccessToken,
  requestAuthorizationCodeGrant,
  requestRefreshGrant,
  requestRevocation,
  revokeToken,
} from './token-client.ts'
export type {
  AuthorizationCodeExchangeInput,
  ClientCredentials,
  RefreshInput,
  RevocationInput,
  TokenEndpointOptions,
  TokenSet,
} from './token-client.ts'

export { checkConsentedAccount, consentedAccount, issuerMatches } from './id-token.ts'
export type { IdTokenClaims } from './id-token.ts'

export { OAUTH_ERROR_CODES, providerErrorToAppError } from './oauth-errors.ts'
export type { OAuthErrorCode, OAuthOperation } from './oauth-errors.ts'

export { describeOAuthError } from './admin-messages.ts'
export type { OAuthMessageContext } from './admin-messages.ts'
