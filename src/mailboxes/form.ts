import { z } from 'zod'
import { checkEndpointUrl, checkMailHost } from '../oauth/endpoint-policy.ts'
import { getPreset, isPresetId } from '../oauth/presets.ts'
import type { PresetId } from '../oauth/presets.ts'
import { isAppError } from '../shared/errors.ts'

/**
 * The Add/Edit Email Server form: field names as posted by the portal, values as typed. Every
 * problem is reported per field (shown beside it), never as one error for the whole form.
 */
export type ServerDirection = 'incoming' | 'outgoing'

export interface ServerFormInput {
  name?: string
  email_address?: string
  display_name?: string
  protocol?: string
  host?: string
  port?: string
  security?: string
  folder?: string
  auth_type?: string
  provider?: string
  tenant?: string
  authorization_url?: string
  token_url?: string
  revocation_url?: string
  scope?: string
  client_id?: string
  client_secret?: string
  username?: string
  password?: string
  poll_interval_seconds?: string
  ack_action?: string
  ack_folder?: string
  outgoing_server_id?: string
  use_incoming_authorization?: string
  is_default?: string
  auto_ack_enabled?: string
  auto_ack_subject?: string
  auto_ack_body?: string
}

export interface ServerFormValues {
  direction: ServerDirection
  name: string
  emailAddress: string
  displayName: string | null
  protocol: 'imap' | 'pop3' | 'smtp'
  host: string
  port: number
  security: 'tls' | 'starttls' | 'none'
  folder: string
  authType: 'oauth2' | 'password'
  provider: PresetId
  authorizationUrl: string
  tokenUrl: string
  revocationUrl: string | null
  issuer: string | null
  scope: string
  clientId: string
  /** Empty on edit means "keep the stored secret". */
  clientSecret: string | null
  username: string | null
  password: string | null
  pollIntervalSeconds: number
  ackAction: 'leave' | 'seen' | 'move' | 'delete'
  ackFolder: string | null
  outgoingServerId: number | null
  useIncomingAuthorization: number | null
  isDefault: boolean
  autoAckEnabled: boolean
  autoAckSubject: string | null
  autoAckBody: string | null
}

export type FieldErrors = Partial<Record<keyof ServerFormInput, string>>

const email = z.string().trim().toLowerCase().email()
const hostname = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$|^\[?[0-9a-f:.]+\]?$/i

/**
 * Validates the form. `existing` is true on edit, where an empty secret or password keeps the
 * stored one. The network policy (https, private addresses) is checked here too, so the admin
 * sees the reason beside the Token Url or Host field.
 */
export async function validateServerForm(
  direction: ServerDirection,
  input: ServerFormInput,
  opts: { existing: boolean; allowedPrivateHosts: string[]; hasIncomingAuthorization?: (id: number) => Promise<boolean> },
): Promise<{ values?: ServerFormValues; errors: FieldErrors }> {
  const errors: FieldErrors = {}
  const s = (v: string | undefined) => (v ?? '').trim()

  const name = s(input.name)
  if (!name) errors.name = 'Enter a name for this server.'
  else if (name.length > 100) errors.name = 'Use at most 100 characters.'

  const addr = email.safeParse(input.email_address ?? '')
  if (!addr.success) errors.email_address = 'Enter a valid email address, e.g. support@example.com.'

  const protocol = direction === 'outgoing' ? 'smtp' : s(input.protocol)
  if (protocol !== 'imap' && protocol !== 'pop3' && protocol !== 'smtp') errors.protocol = 'Choose IMAP or POP3.'

  const host = s(input.host).toLowerCase()
  if (!host) errors.host = 'Enter the mail server host, e.g. imap.gmail.com.'
  else if (!hostname.test(host)) errors.host = 'This is not a valid host name.'

  const port = Number(s(input.port))
  if (!Number.isInteger(port) || port < 1 || port > 65535) errors.port = 'Enter a port between 1 and 65535.'

  const security = s(input.security)
  if (security !== 'tls' && security !== 'starttls' && security !== 'none') errors.security = 'Choose SSL/TLS, STARTTLS or None.'

  if (host && !errors.host) {
    try {
      await checkMailHost(host, { allowedPrivateHosts: opts.allowedPrivateHosts })
      // Credentials in plain text are acceptable only to a host the operator vouched for.
      if (security === 'none' && !opts.allowedPrivateHosts.includes(host)) {
        errors.security = 'None (plain text) is allowed only for hosts listed in DESKMAIL_ALLOWED_PRIVATE_HOSTS; choose SSL/TLS or STARTTLS.'
      }
    } catch (err) {
      if (!isAppError(err)) throw err
      errors.host = err.message
    }
  }

  const folder = s(input.folder) || 'INBOX'
  const authType = s(input.auth_type) || 'oauth2'
  if (authType !== 'oauth2' && authType !== 'password') errors.auth_type = 'Choose OAuth 2.0 or Password.'

  const providerRaw = s(input.provider) || 'custom'
  const provider: PresetId = isPresetId(providerRaw) ? providerRaw : 'custom'
  if (!isPresetId(providerRaw)) errors.provider = 'Choose a provider.'

  let useIncomingAuthorization: number | null = null
  if (direction === 'outgoing' && s(input.use_incoming_authorization)) {
    useIncomingAuthorization = Number(s(input.use_incoming_authorization))
    if (!Number.isInteger(useIncomingAuthorization) || !(await opts.hasIncomingAuthorization?.(useIncomingAuthorization))) {
      errors.use_incoming_authorization = 'Choose a connected incoming server on the same account.'
    }
  }

  const revocationUrlTyped = s(input.revocation_url)
  const authorizationUrl = s(input.authorization_url)
  const tokenUrl = s(input.token_url)
  const scope = s(input.scope).replace(/\s+/g, ' ')
  const clientId = s(input.client_id)
  const clientSecret = s(input.client_secret) || null
  if (authType === 'oauth2' && useIncomingAuthorization === null) {
    if (!clientId) errors.client_id = 'Paste the Client ID from the provider console.'
    if (!clientSecret && !opts.existing) errors.client_secret = 'Paste the Client Secret from the provider console.'
    if (!scope) errors.scope = 'Enter the scope, e.g. https://mail.google.com/.'
    for (const [field, url, purpose] of [
      ['authorization_url', authorizationUrl, 'authorization'],
      ['token_url', tokenUrl, 'token'],
      ['revocation_url', revocationUrlTyped, 'revocation'],
    ] as const) {
      if (!url && purpose === 'revocation') continue
      if (!url) {
        errors[field] = `Enter the ${purpose === 'token' ? 'Token' : 'Authorization'} Url.`
        continue
      }
      try {
        await checkEndpointUrl(url, { purpose, allowedPrivateHosts: opts.allowedPrivateHosts })
      } catch (err) {
        if (!isAppError(err)) throw err
        errors[field] = err.message
      }
    }
  }
  const password = s(input.password) || null
  if (authType === 'password' && !password && !opts.existing) errors.password = 'Enter the password (or an app password).'

  const pollIntervalSeconds = s(input.poll_interval_seconds) ? Number(s(input.poll_interval_seconds)) : 60
  if (!Number.isInteger(pollIntervalSeconds) || pollIntervalSeconds < 10 || pollIntervalSeconds > 86400) {
    errors.poll_interval_seconds = 'Enter a number of seconds between 10 and 86400.'
  }
  const ackAction = (s(input.ack_action) || 'leave') as ServerFormValues['ackAction']
  if (!['leave', 'seen', 'move', 'delete'].includes(ackAction)) errors.ack_action = 'Choose what to do with fetched mail.'
  if (protocol === 'pop3' && (ackAction === 'seen' || ackAction === 'move')) errors.ack_action = 'POP3 can only leave or delete fetched mail.'
  const ackFolder = s(input.ack_folder) || null
  if (ackAction === 'move' && !ackFolder) errors.ack_folder = 'Enter the folder to move fetched mail to.'

  const outgoingServerId = s(input.outgoing_server_id) ? Number(s(input.outgoing_server_id)) : null

  if (Object.keys(errors).length) return { errors }
  const preset = provider !== 'custom' ? getPreset(provider) : undefined
  // The revocation endpoint and issuer come from the preset only when the admin kept the preset's
  // token endpoint; a typed endpoint gets no implied revocation URL.
  const presetMatches = preset && preset.tokenUrl === tokenUrl
  return {
    errors,
    values: {
      direction,
      name,
      emailAddress: addr.data!,
      displayName: s(input.display_name) || null,
      protocol: protocol as ServerFormValues['protocol'],
      host,
      port,
      security: security as ServerFormValues['security'],
      folder,
      authType: authType as ServerFormValues['authType'],
      provider,
      authorizationUrl,
      tokenUrl,
      revocationUrl: revocationUrlTyped || (presetMatches ? (preset.revocationUrl ?? null) : null),
      issuer: presetMatches ? (preset.issuer ?? null) : null,
      scope,
      clientId,
      clientSecret,
      username: s(input.username) || null,
      password,
      pollIntervalSeconds,
      ackAction,
      ackFolder,
      outgoingServerId: Number.isInteger(outgoingServerId) ? outgoingServerId : null,
      useIncomingAuthorization,
      isDefault: s(input.is_default) === 'on' || s(input.is_default) === 'true',
      autoAckEnabled: s(input.auto_ack_enabled) === 'on' || s(input.auto_ack_enabled) === 'true',
      autoAckSubject: s(input.auto_ack_subject) || null,
      autoAckBody: s(input.auto_ack_body) || null,
    },
  }
}
