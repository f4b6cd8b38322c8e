/**
 * One plain sentence per error code, saying what the admin should do. The status page of a
 * server shows it; `details` (non-secret) fill in the specifics.
 */
import { ALLOWED_PRIVATE_HOSTS_ENV } from './endpoint-policy.ts'
import type { PresetId } from './presets.ts'

export interface OAuthMessageContext {
  /** The redirect URI to register, exactly as deskmail sends it. */
  redirectUri: string
  /** The server's provider preset ID (`gmail`, `microsoft365`, ...), for provider-specific advice. */
  provider?: PresetId | string | null
}

type Details = Readonly<Record<string, string | number | undefined>>

const URL_LABEL: Record<string, string> = {
  token: 'Token Url',
  authorization: 'Authorization Url',
  revocation: 'Revocation Url',
  mail: 'mail server host',
}

/** The admin-facing sentence for an OAuth, endpoint-policy or client-JSON error code. */
export function describeOAuthError(code: string, details: Details, ctx: OAuthMessageContext): string {
  const google = ctx.provider === 'gmail'
  const microsoft = ctx.provider === 'microsoft365' || ctx.provider === 'outlook_legacy'
  const ref = microsoftReference(details)
  switch (code) {
    case 'oauth_redirect_uri_mismatch':
      return (
        `The provider refused the redirect URI: register exactly ${ctx.redirectUri} (same case, no extra slash) ` +
        (google
          ? 'under Authorized redirect URIs of this Web application client in the Google Cloud console'
          : microsoft
            ? 'as a Web redirect URI of this app registration in the Microsoft Entra admin center'
            : 'as a redirect URI of this OAuth client') +
        `, then click Reconnect.${ref}`
      )

    case 'oauth_invalid_grant': {
      if (details.operation === 'exchange') {
        return `The sign-in could not be completed because the authorization code expired or was already used: click Reconnect to sign in again.${ref}`
      }
      if (details.error_subtype === 'invalid_rapt') {
        return 'Google Workspace session control requires the account to sign in again: click Reconnect (or exempt this app from re-authentication in the Google Admin console).'
      }
      if (details.aadsts === 'AADSTS700082') {
        return `The Microsoft authorization expired after 90 days without use: click Reconnect.${ref}`
      }
      const testing = google
        ? ' If this happens about 7 days after each consent, the Google app is in Testing publishing status with an External audience: publish the app or make it Internal.'
        : ''
      return `The authorization was revoked or expired: click Reconnect.${testing}${ref}`
    }

    case 'oauth_invalid_client':
      if (details.field === 'client_secret' || details.field === 'client_id') {
        return `The ${details.field === 'client_id' ? 'Client ID' : 'Client Secret'} is empty: paste it from the developer console and save.`
      }
      return (
        'The provider rejected the Client ID or Client Secret: copy both again from the developer console' +
        (microsoft ? ' (a Microsoft client secret expires: create a new one under Certificates & secrets)' : '') +
        ` and save.${ref}`
      )

    case 'oauth_consent_required':
      return (
        'The account has not consented to the mail permissions: click Reconnect and accept them' +
        (microsoft || details.aadsts ? ', or ask a tenant administrator to grant admin consent to the app' : '') +
        `.${ref}`
      )

    case 'oauth_access_denied':
      if (details.error === 'admin_policy_enforced' || details.error === 'org_internal') {
        return 'The Google Workspace administrator does not allow this app for the account: ask them to trust it (Admin console > Security > API controls), or make the app Internal to your organization, then click Reconnect.'
      }
      return `Access was declined at the provider's sign-in page: click Reconnect and accept the requested permissions.${ref}`

    case 'oauth_no_refresh_token':
      if (google) {
        return 'Google returned no refresh token: keep access_type=offline and prompt=consent (the Gmail preset sets them), or remove the app at https://myaccount.google.com/permissions, then click Reconnect.'
      }
      if (microsoft) return 'Microsoft returned no refresh token: add offline_access to the Scope, then click Reconnect.'
      return 'The provider returned no refresh token: add the scope or parameter it needs for offline access (often offline_access), then click Reconnect.'

    case 'oauth_provider_unavailable': {
      const why =
        details.reason === 'timeout'
          ? 'did not answer in time'
          : details.http_status
            ? `answered HTTP ${details.http_status}`
            : `could not be reached${details.reason ? ` (${details.reason})` : ''}`
      return `The provider's endpoint ${why}: deskmail retries automatically; if it persists, check the URL and this server's network access.${ref}`
    }

    case 'oauth_endpoint_redirect':
      return `The ${details.purpose === 'revocation' ? 'Revocation' : 'Token'} Url answered with a redirect${details.location_host ? ` to ${details.location_host}` : ''}, which deskmail does not follow because it would carry the client secret: enter the final endpoint URL.`

    case 'oauth_invalid_response':
      return 'The Token Url did not answer like an OAuth 2.0 token endpoint: check that it is the token endpoint (not the authorization URL); deskmail keeps retrying meanwhile.'

    case 'oauth_invalid_scope':
      return (
        'The provider rejected the Scope: ' +
        (microsoft
          ? 'Microsoft needs https://outlook.office.com/IMAP.AccessAsUser.All (or POP.AccessAsUser.All, SMTP.Send) with offline_access, not the Gmail scope'
          : google
            ? 'Gmail needs https://mail.google.com/, added to the app under Data Access in the Google Cloud console'
            : 'use the mail scope your provider documents') +
        `, then click Reconnect.${ref}`
      )

    case 'oauth_issuer_mismatch':
      return `The response came from ${details.issuer ?? 'another provider'} instead of ${details.expected_issuer ?? 'the configured provider'}: check that the Authorization Url and Token Url belong to the same provider, then click Reconnect.`

    case 'oauth_account_mismatch': {
      const who = details.signed_in_as ?? 'another account'
      const expected = details.expected_account ?? 'the mailbox address'
      if (details.reason === 'email_unverified') {
        return `Signed in as ${who}, whose address the provider has not verified: reconnect and choose ${expected}.`
      }
      return `Signed in as ${who}, but this server is for ${expected}: reconnect and choose ${expected}.`
    }

    case 'oauth_authorization_failed':
      return `The provider returned an error at sign-in (${details.error ?? 'unknown'}${details.error_description ? `: ${details.error_description}` : ''}): check the OAuth settings and click Reconnect.${ref}`

    case 'oauth_request_rejected':
      return `The provider rejected the token request (${details.error ?? 'unknown'}${details.error_description ? `: ${details.error_description}` : ''}): check the Client ID, Client Secret and Token Url.${ref}`

    case 'oauth_invalid_tenant':
      return 'The Microsoft tenant must be common, organizations, consumers, a tenant ID or a verified domain.'

    case 'oauth_unknown_preset':
      return 'Choose a provider preset: Gmail / Google Workspace, Microsoft 365, Outlook.com (legacy Live) or Custom.'

    case 'endpoint_not_https':
      return `The ${label(details)} must start with https:// because it receives the client secret (plain http is accepted only for a loopback host listed in ${ALLOWED_PRIVATE_HOSTS_ENV}).`

    case 'endpoint_private_address':
      return `The ${label(details)} ${details.host ?? ''}${details.address && details.address !== details.host ? ` (${details.address})` : ''} is a private or local address: use the provider's public address, or, for an internal provider, add the host to ${ALLOWED_PRIVATE_HOSTS_ENV}.`

    case 'endpoint_invalid_url':
      return `The ${label(details)} is not a valid address: enter the full URL starting with https://, without # or user name.`

    case 'host_unresolvable':
      return `The host ${details.host ?? ''} could not be found in DNS: check the spelling (deskmail retries in case DNS was briefly unavailable).`

    case 'allowed_private_hosts_invalid':
      return `${ALLOWED_PRIVATE_HOSTS_ENV} contains "${details.entry ?? ''}", which is not a host name, IP address or CIDR range: fix the environment variable and restart.`

    case 'google_json_installed_client':
      return `This JSON file is for a Desktop app client: create a Web application client in the Google Cloud console with the redirect URI ${ctx.redirectUri} and upload its JSON file.`

    case 'google_json_invalid':
      return details.field
        ? `This is not a usable Google OAuth client JSON file (the field "${details.field}" is missing): download it again from Clients in the Google Cloud console.`
        : 'This is not a Google OAuth client JSON file: download it again from Clients in the Google Cloud console.'

    default:
      return `OAuth error ${code}: check the server's OAuth settings and click Reconnect.`
  }
}

function label(details: Details): string {
  return URL_LABEL[String(details.purpose)] ?? 'URL'
}

/** Microsoft asks for these when a support case is opened. */
function microsoftReference(details: Details): string {
  const correlation = details.correlation_id ? `correlation ID ${details.correlation_id}` : undefined
  const parts = [details.aadsts, correlation].filter(
    (part): part is string | number => part !== undefined && part !== '',
  )
  return parts.length > 0 ? ` (${parts.join(', ')})` : ''
}
