/**
 * A stand-in for Google's and Microsoft's OAuth 2.0 servers: oidc-provider 9 on 127.0.0.1 with an
 * in-memory store. See /work/shared/HARNESS.md for the configuration facts this relies on.
 *
 * What it reproduces (PROVIDERS.md):
 * - the mail scopes (`https://mail.google.com/`, `https://outlook.office.com/IMAP.AccessAsUser.All`,
 *   `.../POP.AccessAsUser.All`, `.../SMTP.Send`) on opaque access tokens whose audience is the mail
 *   resource, so that Dovecot and the SMTP sink can introspect them;
 * - `openid email`: an ID token carrying `email` and `email_verified`;
 * - Google-like refresh tokens (issued when the authorization request carries `access_type=offline`)
 *   and Microsoft-like ones (`offline_access`, rotated on every use for clients registered with
 *   `rotateRefreshTokens: true`; reusing a rotated one revokes the grant, RFC 9700 section 4.14.2);
 * - PKCE S256 on every flow (RFC 7636), token revocation (RFC 7009, revoking one token revokes the
 *   whole grant as Google does), introspection (RFC 7662) for the mail servers only.
 *
 * Its store is in memory: stopping it forgets every token.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import Provider, { errors as oidcErrors } from 'oidc-provider'
import type { ProviderKoaContext, ProviderModel, ProviderPayload } from 'oidc-provider'

/** The resource (audience) every mail access token is issued for. Introspection requires it. */
export const MAIL_AUDIENCE = 'https://mail.test.invalid/'

export const GOOGLE_MAIL_SCOPE = 'https://mail.google.com/'
export const MICROSOFT_MAIL_SCOPES = [
  'https://outlook.office.com/IMAP.AccessAsUser.All',
  'https://outlook.office.com/POP.AccessAsUser.All',
  'https://outlook.office.com/SMTP.Send',
] as const
export const MAIL_SCOPES: readonly string[] = [GOOGLE_MAIL_SCOPE, ...MICROSOFT_MAIL_SCOPES]

const DEFAULT_ACCESS_TOKEN_TTL = 3600

export interface RegisterClientOptions {
  client_id: string
  client_secret: string
  redirect_uris: string[]
  /** Seconds; default 3600. Short values (e.g. 3) are for expiry tests. */
  accessTokenTTL?: number
  /** Microsoft-like: a new refresh token on every refresh, the used one is consumed. */
  rotateRefreshTokens?: boolean
  /** Default `client_secret_post`. */
  tokenEndpointAuthMethod?: 'client_secret_post' | 'client_secret_basic'
}

export interface IssueTokensOptions {
  clientId: string
  /** Becomes `sub`, the account and the `email` claim. */
  email: string
  /** Space-separated; default `https://mail.google.com/`. */
  scope?: string
  /** Seconds; default: the client's accessTokenTTL, else 3600. */
  accessTokenTTL?: number
}

export interface IssuedTokens {
  access_token: string
  refresh_token: string
  expires_in: number
}

export interface AuthorizeHeadlessOptions {
  /** Any login is accepted: it becomes the account, `sub` and `email`. */
  login: string
  /** Cancel at the consent page (the user refuses): the redirect carries `error=access_denied`. */
  deny?: boolean
}

export interface OAuthServer {
  issuer: string
  authorizationUrl: string
  tokenUrl: string
  revocationUrl: string
  introspectionUrl: string
  /** Client credentials the mail servers (Dovecot, SMTP sink) use to introspect bearer tokens. */
  introspectionClient: { id: string; secret: string }
  /** Adds (or replaces) a client; usable at any time after start. */
  registerClient(options: RegisterClientOptions): void
  /** Mints a grant, an access token and a refresh token directly, without the authorization flow. */
  issueTokens(options: IssueTokensOptions): Promise<IssuedTokens>
  /**
   * Drives the login and consent pages with fetch and a cookie jar; returns the final redirect URL
   * (the app's callback with `code` and `state`, or with `error=access_denied` when `deny` is set).
   */
  authorizeHeadless(authorizationUrl: string, options: AuthorizeHeadlessOptions): Promise<string>
  /**
   * The user revokes access: every grant, token and session of this account (case-insensitive)
   * dies. Returns how many records were removed.
   */
  revokeAll(email: string): number
  /** Revokes one access or refresh token and, as Google does, the whole grant behind it. */
  revokeToken(token: string): Promise<boolean>
  /** The underlying oidc-provider instance, for tests that need more. */
  provider: Provider
  stop(): Promise<void>
}

// ---------------------------------------------------------------------------------------------
// In-memory adapter. oidc-provider's own memory adapter is module-global (shared by every
// provider in the process) and knows nothing of clients added later; this one belongs to one
// server, and its `Client` model reads the server's mutable client map.

interface StoredRecord {
  payload: ProviderPayload
  expiresAt: number | undefined
}

class Store {
  readonly models = new Map<string, Map<string, StoredRecord>>()
  readonly clients = new Map<string, ProviderPayload>()

  model(name: string): Map<string, StoredRecord> {
    let records = this.models.get(name)
    if (!records) {
      records = new Map()
      this.models.set(name, records)
    }
    return records
  }

  adapterFor(name: string): object {
    if (name === 'Client') {
      const clients = this.clients
      return {
        async find(id: string) {
          const metadata = clients.get(id)
          return metadata ? structuredClone(metadata) : undefined
        },
        async upsert() {
          throw new Error('clients are registered through registerClient()')
        },
        async destroy(id: string) {
          clients.delete(id)
        },
      }
    }
    const records = this.model(name)
    const live = (id: string): StoredRecord | undefined => {
      const record = records.get(id)
      if (record && record.expiresAt !== undefined && record.expiresAt <= Date.now()) {
        records.delete(id)
        return undefined
      }
      return record
    }
    const findBy = (field: string, value: string) => {
      for (const [id, record] of records) {
        if (record.payload[field] === value) {
          const found = live(id)
          return found ? structuredClone(found.payload) : undefined
        }
      }
      return undefined
    }
    return {
      async upsert(id: string, payload: ProviderPayload, expiresIn?: number) {
        const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined
        records.set(id, { payload: structuredClone(payload), expiresAt })
      },
      async find(id: string) {
        const record = live(id)
        return record ? structuredClone(record.payload) : undefined
      },
      async findByUid(uid: string) {
        return findBy('uid', uid)
      },
      async findByUserCode(userCode: string) {
        return findBy('userCode', userCode)
      },
      async consume(id: string) {
        const record = live(id)
        if (record) record.payload.consumed = Math.floor(Date.now() / 1000)
      },
      async destroy(id: string) {
        records.delete(id)
      },
      async revokeByGrantId(grantId: string) {
        for (const [id, record] of records) if (record.payload.grantId === grantId) records.delete(id)
      },
    }
  }

  /** Deletes every record (of every model) that belongs to the grant, and the grant itself. */
  dropGrant(grantId: string): number {
    let count = 0
    for (const [name, records] of this.models) {
      for (const [id, record] of records) {
        if (record.payload.grantId === grantId || (name === 'Grant' && id === grantId)) {
          records.delete(id)
          count++
        }
      }
    }
    return count
  }
}

// ---------------------------------------------------------------------------------------------

function randomSecret(): string {
  return randomBytes(24).toString('hex')
}

function signingKey(): ProviderPayload {
  // ID tokens are RS256 by default; a fresh key per server rather than oidc-provider's public dev key.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'test' }
}

function clientMetadata(options: RegisterClientOptions): ProviderPayload {
  return {
    client_id: options.client_id,
    client_secret: options.client_secret,
    redirect_uris: options.redirect_uris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: options.tokenEndpointAuthMethod ?? 'client_secret_post',
  }
}

/** Starts the stand-in on `127.0.0.1:<free port>`. */
export async function startOAuthServer(opts: { port?: number } = {}): Promise<OAuthServer> {
  const store = new Store()
  const clientOptions = new Map<string, { accessTokenTTL?: number; rotateRefreshTokens?: boolean }>()
  /** Codes whose request had `access_type=offline` (Google's way to ask for a refresh token). */
  const offlineCodes = new Set<string>()

  const introspectionClient = { id: `introspector-${randomSecret().slice(0, 8)}`, secret: randomSecret() }
  store.clients.set(introspectionClient.id, {
    client_id: introspectionClient.id,
    client_secret: introspectionClient.secret,
    redirect_uris: [],
    grant_types: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  })

  // The issuer embeds the port, so the HTTP server is bound first and the provider built after.
  const server = http.createServer()
  server.listen(opts.port ?? 0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const issuer = `http://127.0.0.1:${port}`

  const accessTokenTtlFor = (clientId: string | undefined): number =>
    (clientId && clientOptions.get(clientId)?.accessTokenTTL) || DEFAULT_ACCESS_TOKEN_TTL

  const mailResourceServer = (clientId: string | undefined, ttl?: number): ProviderPayload => ({
    scope: MAIL_SCOPES.join(' '),
    audience: MAIL_AUDIENCE,
    accessTokenTTL: ttl ?? accessTokenTtlFor(clientId),
    // JWT access tokens cannot be introspected by oidc-provider (HARNESS.md): opaque ones only.
    accessTokenFormat: 'opaque',
  })

  const provider = new Provider(issuer, {
    adapter: (name: string) => store.adapterFor(name),
    jwks: { keys: [signingKey()] },
    cookies: { keys: [randomSecret()] },
    clockTolerance: 0,
    responseTypes: ['code'],
    extraParams: ['access_type'],
    pkce: { required: () => true },
    scopes: ['openid', 'offline_access'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    // Any login is accepted (devInteractions): the login is the account, its `sub` and its `email`.
    findAccount: async (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: async () => ({ sub, email: sub, email_verified: true }),
    }),
    // Google-like: a refresh token when the request said access_type=offline; Microsoft-like and
    // OpenID Connect: when `offline_access` was granted.
    issueRefreshToken: async (_ctx: unknown, client: ProviderModel, source: ProviderModel) =>
      client.grantTypeAllowed('refresh_token') &&
      (source.scopes.has('offline_access') ||
        (source.kind === 'AuthorizationCode' && offlineCodes.has(source.jti))),
    rotateRefreshToken: (ctx: ProviderKoaContext) =>
      clientOptions.get(ctx.oidc?.client?.clientId)?.rotateRefreshTokens === true,
    // Google: revoking one token revokes the user's grant to the client, access and refresh alike.
    revokeGrantPolicy: () => true,
    // Access tokens must not outlive the session cookie of the dev interactions.
    expiresWithSession: async () => false,
    ttl: {
      // Must be a function: a number would override the per-resource TTL (HARNESS.md).
      AccessToken: (_ctx: unknown, token: ProviderModel) =>
        token.resourceServer?.accessTokenTTL ?? DEFAULT_ACCESS_TOKEN_TTL,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 90 * 24 * 3600,
      Grant: 365 * 24 * 3600,
      Session: 24 * 3600,
      Interaction: 3600,
    },
    extraTokenClaims: async (_ctx: unknown, token: ProviderModel) =>
      token.accountId ? { email: token.accountId } : undefined,
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      introspection: {
        enabled: true,
        // Only the mail servers may introspect, and only mail access tokens: otherwise a refresh
        // token sent as a bearer would introspect as active (HARNESS.md).
        allowedPolicy: async (_ctx: unknown, client: ProviderModel, token: ProviderModel) => {
          if (client.clientId !== introspectionClient.id) return false
          if (token.kind !== 'AccessToken') return false
          const audiences: unknown[] = Array.isArray(token.aud) ? token.aud : [token.aud]
          if (!audiences.includes(MAIL_AUDIENCE)) return false
          return [...(token.scopes as Set<string>)].some((scope) => MAIL_SCOPES.includes(scope))
        },
      },
      resourceIndicators: {
        enabled: true,
        // Clients send no `resource=`: Google and Microsoft infer the audience from the scope.
        defaultResource: async (_ctx: unknown, _client: unknown, oneOf?: string[]) =>
          oneOf?.[0] ?? MAIL_AUDIENCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: unknown, resource: string, client: ProviderModel) => {
          if (resource !== MAIL_AUDIENCE) throw new oidcErrors.InvalidTarget!()
          return mailResourceServer(client?.clientId)
        },
      },
    },
  })

  // Remembers which authorization codes were asked for with access_type=offline. The code is
  // created when the interaction resumes, whose params are those of the original request.
  provider.use(async (ctx, next) => {
    await next()
    const code = ctx.oidc?.entities?.AuthorizationCode as ProviderModel | undefined
    if (code?.jti && ctx.oidc?.params?.access_type === 'offline') offlineCodes.add(code.jti)
  })

  server.on('request', provider.callback())

  const registerClient = (options: RegisterClientOptions): void => {
    store.clients.set(options.client_id, clientMetadata(options))
    clientOptions.set(options.client_id, {
      accessTokenTTL: options.accessTokenTTL,
      rotateRefreshTokens: options.rotateRefreshTokens,
    })
  }

  const issueTokens = async (options: IssueTokensOptions): Promise<IssuedTokens> => {
    const client = await provider.Client.find(options.clientId)
    if (!client) throw new Error(`issueTokens: unknown client ${options.clientId}`)
    const requested = (options.scope ?? GOOGLE_MAIL_SCOPE).split(' ').filter(Boolean)
    const mailScope = requested.filter((scope) => MAIL_SCOPES.includes(scope)).join(' ')
    const oidcScopes = new Set([...requested.filter((s) => !MAIL_SCOPES.includes(s)), 'offline_access'])
    const oidcScope = [...oidcScopes].join(' ')

    const grant = new provider.Grant({ accountId: options.email, clientId: options.clientId })
    grant.addOIDCScope(oidcScope)
    if (mailScope) grant.addResourceScope(MAIL_AUDIENCE, mailScope)
    const grantId = await grant.save()

    const ttl = options.accessTokenTTL ?? accessTokenTtlFor(options.clientId)
    const accessToken = new provider.AccessToken({
      accountId: options.email,
      client,
      grantId,
      gty: 'authorization_code',
      scope: mailScope,
      resourceServer: new provider.ResourceServer(MAIL_AUDIENCE, mailResourceServer(options.clientId, ttl)),
    })
    const access_token = await accessToken.save()

    const refreshToken = new provider.RefreshToken({
      accountId: options.email,
      client,
      grantId,
      gty: 'authorization_code',
      scope: [oidcScope, mailScope].filter(Boolean).join(' '),
      resource: MAIL_AUDIENCE,
    })
    const refresh_token = await refreshToken.save()
    return { access_token, refresh_token, expires_in: ttl }
  }

  const revokeAll = (email: string): number => {
    // Addresses compare case-insensitively, as the mail servers do (Dovecot's `%Lu`).
    const account = email.toLowerCase()
    let count = 0
    for (const records of store.models.values()) {
      for (const [id, record] of records) {
        const owner: unknown = record.payload.accountId
        if (typeof owner === 'string' && owner.toLowerCase() === account) {
          if (record.payload.grantId) count += store.dropGrant(record.payload.grantId)
          if (records.delete(id)) count++
        }
      }
    }
    return count
  }

  const revokeToken = async (token: string): Promise<boolean> => {
    for (const name of ['AccessToken', 'RefreshToken']) {
      const record = store.model(name).get(token)
      if (record) {
        store.model(name).delete(token)
        if (record.payload.grantId) store.dropGrant(record.payload.grantId)
        return true
      }
    }
    return false
  }

  const stop = async (): Promise<void> => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  return {
    issuer,
    authorizationUrl: `${issuer}/auth`,
    tokenUrl: `${issuer}/token`,
    revocationUrl: `${issuer}/token/revocation`,
    introspectionUrl: `${issuer}/token/introspection`,
    introspectionClient,
    registerClient,
    issueTokens,
    authorizeHeadless: (authorizationUrl, options) => authorizeHeadless(issuer, authorizationUrl, options),
    revokeAll,
    revokeToken,
    provider,
    stop,
  }
}

// ---------------------------------------------------------------------------------------------
// Headless login and consent: plain fetch with a cookie jar, no browser.

class CookieJar {
  private readonly cookies = new Map<string, string>()

  /** Paths are ignored: the flow is sequential and only talks to one host. */
  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';')
      const eq = pair.indexOf('=')
      if (eq < 1) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = attributes.some((attribute) => {
        const [key = '', val = ''] = attribute.split('=').map((part) => part.trim())
        return (
          (key.toLowerCase() === 'expires' && Date.parse(val) <= Date.now()) ||
          (key.toLowerCase() === 'max-age' && Number(val) <= 0)
        )
      })
      if (expired || value === '') this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  }
}

async function authorizeHeadless(
  issuer: string,
  authorizationUrl: string,
  options: AuthorizeHeadlessOptions,
): Promise<string> {
  const origin = new URL(issuer).origin
  const jar = new CookieJar()
  let url = authorizationUrl
  let method: 'GET' | 'POST' = 'GET'
  let body: URLSearchParams | undefined

  for (let step = 0; step < 20; step++) {
    if (new URL(url).origin !== origin) return url
    const response = await fetch(url, {
      method,
      body,
      redirect: 'manual',
      headers: { cookie: jar.header() },
    })
    jar.store(response)
    const location = response.headers.get('location')
    if (response.status >= 300 && response.status < 400 && location) {
      await response.arrayBuffer()
      url = new URL(location, url).href
      method = 'GET'
      body = undefined
      continue
    }
    const html = await response.text()
    if (response.status !== 200) {
      const where = new URL(url).pathname
      throw new Error(`authorizeHeadless: HTTP ${response.status} at ${where}: ${html.slice(0, 300)}`)
    }
    // devInteractions pages: a form posting `prompt=login` (login, password) or `prompt=consent`.
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1]
    const prompt = /name="prompt" value="([a-z]+)"/.exec(html)?.[1]
    if (!action || !prompt) throw new Error(`authorizeHeadless: unexpected page at ${new URL(url).pathname}`)
    url = new URL(action.replaceAll('&amp;', '&'), url).href
    if (prompt === 'consent' && options.deny) {
      url = `${url}/abort`
      method = 'GET'
      body = undefined
      continue
    }
    method = 'POST'
    body =
      prompt === 'login'
        ? new URLSearchParams({ prompt, login: options.login, password: 'any' })
        : new URLSearchParams({ prompt })
  }
  throw new Error('authorizeHeadless: too many steps')
}
