/**
 * The client JSON file that the Google Cloud console downloads for an OAuth client, accepted as
 * an upload so that the admin does not copy five fields by hand.
 *
 * Shape: `{"web":{"client_id","project_id","auth_uri","token_uri","auth_provider_x509_cert_url",
 * "client_secret","redirect_uris":[...]}}`. `redirect_uris` is missing when none is registered;
 * older files carry `revoke_uri`; `"installed"` instead of `"web"` is a Desktop app client, which
 * cannot use a web redirect URI. Parsing is lenient about everything else and precise about
 * what is wrong. The client secret never appears in an error.
 *
 * @see https://developers.google.com/identity/protocols/oauth2/web-server#creatingcred
 */
import { AppError } from '../shared/errors.ts'

export interface GoogleClientConfig {
  clientId: string
  clientSecret: string
  authorizationUrl: string
  tokenUrl: string
  revocationUrl?: string
  /** As registered in the console; empty when the file lists none. */
  redirectUris: string[]
  projectId?: string
}

export const GOOGLE_JSON_ERROR_CODES = {
  installedClient: 'google_json_installed_client',
  invalid: 'google_json_invalid',
} as const

/** A downloaded client file is a few hundred bytes; anything far larger is not one. */
const MAX_LENGTH = 64 * 1024

/**
 * Parses the Google client JSON.
 *
 * @throws AppError `google_json_installed_client` for a Desktop app ("installed") client,
 *   `google_json_invalid` when the text is not JSON or a required field is missing (the message
 *   names the field).
 */
export function parseGoogleClientJson(text: string): GoogleClientConfig {
  if (text.length > MAX_LENGTH) throw invalid('The file is too large to be a Google OAuth client JSON file')
  let json: unknown
  try {
    // A byte-order mark is common in files re-saved by Windows editors.
    json = JSON.parse(text.replace(/^\uFEFF/, ''))
  } catch {
    throw invalid('The file is not JSON; download the OAuth client JSON again from the Google Cloud console')
  }
  if (!isObject(json)) throw invalid('The file is not a Google OAuth client JSON object')

  let section: Record<string, unknown>
  let sectionName: string
  if (isObject(json.web)) {
    section = json.web
    sectionName = '"web"'
  } else if (json.installed !== undefined) {
    throw new AppError(
      GOOGLE_JSON_ERROR_CODES.installedClient,
      'This is a Desktop app client ("installed"); create a Web application client in the Google Cloud console ' +
        '(Clients > Create client > Application type: Web application), add the redirect URI shown here, ' +
        'and upload its JSON file',
      { details: { field: 'installed' } },
    )
  } else if (typeof json.client_id === 'string') {
    // The inner object pasted on its own.
    section = json
    sectionName = 'the file'
  } else {
    throw invalid('The file has no "web" section; download the JSON of a Web application OAuth client', 'web')
  }

  const required = (field: string): string => {
    const value = section[field]
    if (typeof value !== 'string' || value.trim() === '') {
      throw invalid(`The field "${field}" is missing or empty in ${sectionName}`, field)
    }
    return value.trim()
  }
  const optional = (field: string): string | undefined => {
    const value = section[field]
    return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined
  }

  const config: GoogleClientConfig = {
    clientId: required('client_id'),
    clientSecret: required('client_secret'),
    authorizationUrl: required('auth_uri'),
    tokenUrl: required('token_uri'),
    redirectUris: Array.isArray(section.redirect_uris)
      ? section.redirect_uris.filter((uri): uri is string => typeof uri === 'string' && uri !== '')
      : [],
  }
  const revocationUrl = optional('revoke_uri')
  if (revocationUrl) config.revocationUrl = revocationUrl
  const projectId = optional('project_id')
  if (projectId) config.projectId = projectId
  return config
}

/**
 * Warns when the client's registered redirect URIs do not contain ours. The comparison is exact
 * and case-sensitive, as the providers' is (RFC 6749 section 3.1.2.3, RFC 9700 section 4.1.3:
 * exact string matching).
 *
 * @returns a sentence for the admin, or `undefined` when ours is registered.
 */
export function checkRedirectUriRegistered(
  redirectUris: readonly string[],
  ourRedirectUri: string,
): string | undefined {
  if (redirectUris.includes(ourRedirectUri)) return undefined
  if (redirectUris.length === 0) {
    return `The client JSON lists no authorized redirect URI: add ${ourRedirectUri} under Authorized redirect URIs of this client in the Google Cloud console.`
  }
  const near = redirectUris.find((uri) => sameIgnoringCaseAndSlash(uri, ourRedirectUri))
  if (near) {
    return `The client has ${near} registered, which differs from ${ourRedirectUri} (the match is exact, including case and trailing slash): add ${ourRedirectUri} under Authorized redirect URIs.`
  }
  return `${ourRedirectUri} is not among this client's authorized redirect URIs (${redirectUris.join(', ')}): add it in the Google Cloud console.`
}

function sameIgnoringCaseAndSlash(a: string, b: string): boolean {
  const strip = (value: string) => value.toLowerCase().replace(/\/+$/, '')
  return strip(a) === strip(b)
}

function invalid(message: string, field?: string): AppError {
  return new AppError(GOOGLE_JSON_ERROR_CODES.invalid, message, { details: { field } })
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
