import assert from 'node:assert/strict'
import { generateKeyPairSync, sign } from 'node:crypto'
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, beforeEach, describe, test } from 'node:test'
import {
  exchangeAuthorizationCode,
  processRefreshGrant,
  refreshAccessToken,
  revokeToken,
  type AuthorizationCodeExchangeInput,
  type RefreshInput,
} from '../../src/oauth/token-client.ts'
import { AppError } from '../../src/shared/errors.ts'

// ---------------------------------------------------------------------------------------------
// A fake token endpoint of our own: each path answers one way, every request is recorded.

interface Recorded {
  path: string
  headers: http.IncomingHttpHeaders
  body: URLSearchParams
}

type Route = (req: Recorded, res: http.ServerResponse) => void

const CLIENT_ID = 'client-123'
const CLIENT_SECRET = 'secret-do-not-leak-4711'
const CODE = 'auth-code-do-not-leak'
const VERIFIER = 'verifier-do-not-leak-0123456789012345678901234567890'
const REFRESH = 'refresh-token-do-not-leak'
const REDIRECT = 'http://127.0.0.1:9/oauth/callback'
const SECRETS = [CLIENT_SECRET, CODE, VERIFIER, REFRESH]

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
let routes: Record<string, Route> = {}
let recorded: Recorded[] = []
let server: http.Server
let base: string

function idToken(claims: Record<string, unknown>): string {
  const now = Math.floor(Date.now() / 1000)
  const header = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'k1' })).toString('base64url')
  const payload = Buffer.from(JSON.stringify({ iat: now, exp: now + 3600, ...claims })).toString('base64url')
  const signature = sign('sha256', Buffer.from(`${header}.${payload}`), privateKey).toString('base64url')
  return `${header}.${payload}.${signature}`
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Route {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers })
    res.end(JSON.stringify(body))
  }
}

const googleIdClaims = {
  iss: 'https://accounts.google.com',
  aud: CLIENT_ID,
  sub: '110169484474386276334',
  email: 'support@example.com',
  email_verified: true,
}

before(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const path = new URL(req.url ?? '/', 'http://x').pathname
      const entry = { path, headers: req.headers, body: new URLSearchParams(Buffer.concat(chunks).toString()) }
      recorded.push(entry)
      const route = routes[path]
      if (route) route(entry, res)
      else json(404, { error: 'not_found' })(entry, res)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

after(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

beforeEach(() => {
  routes = {}
  recorded = []
})

function exchangeInput(path: string, overrides: Partial<AuthorizationCodeExchangeInput> = {}): AuthorizationCodeExchangeInput {
  return {
    tokenUrl: `${base}${path}`,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    redirectUri: REDIRECT,
    code: CODE,
    codeVerifier: VERIFIER,
    allowedPrivateHosts: ['127.0.0.1'],
    timeoutMs: 2000,
    ...overrides,
  }
}

function refreshInput(path: string, overrides: Partial<RefreshInput> = {}): RefreshInput {
  return {
    tokenUrl: `${base}${path}`,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    refreshToken: REFRESH,
    allowedPrivateHosts: ['127.0.0.1'],
    timeoutMs: 2000,
    ...overrides,
  }
}

async function failure(promise: Promise<unknown>): Promise<AppError> {
  try {
    await promise
  } catch (err) {
    assert.ok(err instanceof AppError, `expected an AppError, got ${String(err)}`)
    const visible = `${err.message} ${JSON.stringify(err.details)}`
    for (const secret of SECRETS) assert.ok(!visible.includes(secret), `a secret leaked into: ${visible}`)
    return err
  }
  assert.fail('expected a failure')
}

// ---------------------------------------------------------------------------------------------

describe('authorization code exchange', () => {
  test('when the endpoint returns tokens and an ID token, then the token set carries them and the request had PKCE and client_secret_post', async () => {
    routes['/token'] = json(200, {
      access_token: 'ya29.access',
      expires_in: 3599,
      refresh_token: '1//refresh',
      scope: 'https://mail.google.com/ openid https://www.googleapis.com/auth/userinfo.email',
      token_type: 'Bearer',
      id_token: idToken(googleIdClaims),
    })
    const before = Date.now()
    const tokens = await exchangeAuthorizationCode(exchangeInput('/token', { expectedIssuer: 'https://accounts.google.com' }))
    assert.equal(tokens.accessToken, 'ya29.access')
    assert.equal(tokens.refreshToken, '1//refresh')
    assert.equal(tokens.tokenType, 'bearer')
    assert.match(tokens.scope ?? '', /https:\/\/mail\.google\.com\//)
    assert.ok(tokens.expiresAt.getTime() >= before + 3599_000 && tokens.expiresAt.getTime() <= Date.now() + 3599_000)
    assert.deepEqual(tokens.idTokenClaims, googleIdClaims)

    const [sent] = recorded
    assert.equal(sent?.body.get('grant_type'), 'authorization_code')
    assert.equal(sent?.body.get('code'), CODE)
    assert.equal(sent?.body.get('code_verifier'), VERIFIER)
    assert.equal(sent?.body.get('redirect_uri'), REDIRECT)
    assert.equal(sent?.body.get('client_id'), CLIENT_ID)
    assert.equal(sent?.body.get('client_secret'), CLIENT_SECRET)
    assert.equal(sent?.headers.authorization, undefined)
  })

  test('when client_secret_basic is selected, then the secret goes in the Authorization header only', async () => {
    routes['/token'] = json(200, { access_token: 'a', refresh_token: 'r', token_type: 'Bearer', expires_in: 60 })
    await exchangeAuthorizationCode(exchangeInput('/token', { authMethod: 'client_secret_basic' }))
    const [sent] = recorded
    const [scheme, credentials] = (sent?.headers.authorization ?? '').split(' ')
    assert.equal(scheme, 'Basic')
    // RFC 6749 section 2.3.1: both halves are form-urlencoded before base64.
    const [id, secret] = Buffer.from(credentials ?? '', 'base64').toString().split(':').map(decodeURIComponent)
    assert.deepEqual([id, secret], [CLIENT_ID, CLIENT_SECRET])
    assert.equal(sent?.body.get('client_secret'), null)
  })

  test('when Google signs with the issuer form accounts.google.com, then it is accepted', async () => {
    routes['/token'] = json(200, {
      access_token: 'a',
      refresh_token: 'r',
      token_type: 'Bearer',
      id_token: idToken({ ...googleIdClaims, iss: 'accounts.google.com' }),
    })
    const tokens = await exchangeAuthorizationCode(exchangeInput('/token', { expectedIssuer: 'https://accounts.google.com' }))
    assert.equal(tokens.idTokenClaims?.sub, googleIdClaims.sub)
  })

  test('when the ID token comes from another issuer, then oauth_issuer_mismatch', async () => {
    routes['/token'] = json(200, {
      access_token: 'a',
      refresh_token: 'r',
      token_type: 'Bearer',
      id_token: idToken({ ...googleIdClaims, iss: 'https://evil.example.com' }),
    })
    const err = await failure(exchangeAuthorizationCode(exchangeInput('/token', { expectedIssuer: 'https://accounts.google.com' })))
    assert.equal(err.code, 'oauth_issuer_mismatch')
    assert.equal(err.details.issuer, 'https://evil.example.com')
  })

  test('when the ID token audience is another client, then the exchange is refused', async () => {
    routes['/token'] = json(200, {
      access_token: 'a',
      refresh_token: 'r',
      token_type: 'Bearer',
      id_token: idToken({ ...googleIdClaims, aud: 'someone-else' }),
    })
    const err = await failure(exchangeAuthorizationCode(exchangeInput('/token')))
    assert.equal(err.code, 'oauth_invalid_response')
    assert.match(String(err.details.reason), /aud/)
  })

  test('when a Microsoft common-tenant ID token names its tenant, then the {tenantid} issuer matches its tid', async () => {
    const tid = '9188040d-6c67-4c5b-b112-36a304b66dad'
    const claims = { iss: `https://login.microsoftonline.com/${tid}/v2.0`, aud: CLIENT_ID, sub: 'AAAA', tid, preferred_username: 'support@contoso.com' }
    routes['/ms'] = json(200, { access_token: 'a', refresh_token: 'r', token_type: 'Bearer', expires_in: '3600', id_token: idToken(claims) })
    const tokens = await exchangeAuthorizationCode(
      exchangeInput('/ms', { expectedIssuer: 'https://login.microsoftonline.com/{tenantid}/v2.0' }),
    )
    assert.equal(tokens.idTokenClaims?.tid, tid)
    assert.equal(tokens.idTokenClaims?.preferred_username, 'support@contoso.com')

    routes['/ms'] = json(200, {
      access_token: 'a',
      refresh_token: 'r',
      token_type: 'Bearer',
      id_token: idToken({ ...claims, tid: '00000000-0000-0000-0000-000000000000' }),
    })
    const err = await failure(
      exchangeAuthorizationCode(exchangeInput('/ms', { expectedIssuer: 'https://login.microsoftonline.com/{tenantid}/v2.0' })),
    )
    assert.equal(err.code, 'oauth_issuer_mismatch')
  })

  test('when the nonce is passed back and the ID token carries another, then the exchange is refused', async () => {
    routes['/token'] = json(200, {
      access_token: 'a',
      refresh_token: 'r',
      token_type: 'Bearer',
      id_token: idToken({ ...googleIdClaims, nonce: 'n-1' }),
    })
    await exchangeAuthorizationCode(exchangeInput('/token', { expectedNonce: 'n-1' }))
    const err = await failure(exchangeAuthorizationCode(exchangeInput('/token', { expectedNonce: 'n-2' })))
    assert.equal(err.code, 'oauth_invalid_response')
  })

  test('when the callback iss is not the expected issuer, then nothing is sent to the token endpoint (RFC 9207)', async () => {
    routes['/token'] = json(200, { access_token: 'a', refresh_token: 'r', token_type: 'Bearer' })
    const err = await failure(
      exchangeAuthorizationCode(
        exchangeInput('/token', {
          expectedIssuer: 'https://accounts.google.com',
          callbackParams: new URLSearchParams({ code: CODE, state: 's', iss: 'https://evil.example.com' }),
        }),
      ),
    )
    assert.equal(err.code, 'oauth_issuer_mismatch')
    assert.equal(recorded.length, 0)
  })

  test('when no refresh token is returned, then oauth_no_refresh_token unless it is not required', async () => {
    routes['/token'] = json(200, { access_token: 'a', token_type: 'Bearer', expires_in: 3600, id_token: idToken(googleIdClaims) })
    const err = await failure(exchangeAuthorizationCode(exchangeInput('/token')))
    assert.equal(err.code, 'oauth_no_refresh_token')
    assert.equal(err.transient, false)
    assert.equal(err.details.signed_in_as, 'support@example.com')
    const tokens = await exchangeAuthorizationCode(exchangeInput('/token', { requireRefreshToken: false }))
    assert.equal(tokens.refreshToken, undefined)
  })

  test('when Google answers redirect_uri_mismatch, then oauth_redirect_uri_mismatch', async () => {
    routes['/token'] = json(400, { error: 'redirect_uri_mismatch', error_description: 'Bad Request' })
    const err = await failure(exchangeAuthorizationCode(exchangeInput('/token')))
    assert.equal(err.code, 'oauth_redirect_uri_mismatch')
    assert.equal(err.details.operation, 'exchange')
  })

  test('when Microsoft answers AADSTS50011, then oauth_redirect_uri_mismatch with the AADSTS code and correlation ID', async () => {
    routes['/token'] = json(400, {
      error: 'invalid_request',
      error_description:
        "AADSTS50011: The redirect URI 'http://127.0.0.1:9/oauth/callback' specified in the request does not match the redirect URIs configured for the application.\r\nTrace ID: 0d8c0b9a-7d1f-4b1e-9f9a-3a0c3b2d1e00\r\nCorrelation ID: 5a3a7f1e-2c4b-4d8e-a1f0-9e8d7c6b5a40\r\nTimestamp: 2024-05-02 10:00:00Z",
      error_codes: [50011],
      timestamp: '2024-05-02 10:00:00Z',
      trace_id: '0d8c0b9a-7d1f-4b1e-9f9a-3a0c3b2d1e00',
      correlation_id: '5a3a7f1e-2c4b-4d8e-a1f0-9e8d7c6b5a40',
    })
    const err = await failure(exchangeAuthorizationCode(exchangeInput('/token')))
    assert.equal(err.code, 'oauth_redirect_uri_mismatch')
    assert.equal(err.details.aadsts, 'AADSTS50011')
    assert.equal(err.details.correlation_id, '5a3a7f1e-2c4b-4d8e-a1f0-9e8d7c6b5a40')
    assert.equal(err.details.trace_id, '0d8c0b9a-7d1f-4b1e-9f9a-3a0c3b2d1e00')
    assert.ok(!String(err.details.error_description).includes('Trace ID'))
  })

  test('when Microsoft answers AADSTS65001, then oauth_consent_required', async () => {
    routes['/token'] = json(400, {
      error: 'invalid_grant',
      error_description: 'AADSTS65001: The user or administrator has not consented to use the application.',
      error_codes: [65001],
      suberror: 'consent_required',
    })
    const err = await failure(exchangeAuthorizationCode(exchangeInput('/token')))
    assert.equal(err.code, 'oauth_consent_required')
    assert.equal(err.details.error_subtype, 'consent_required')
  })
})

describe('refresh', () => {
  test('when the provider rotates the refresh token, then the new one is returned and the scope was sent', async () => {
    routes['/token'] = json(200, {
      token_type: 'Bearer',
      scope: 'https://outlook.office.com/IMAP.AccessAsUser.All',
      expires_in: 4493,
      ext_expires_in: 4493,
      access_token: 'eyJ0.access',
      refresh_token: '0.AAAA-rotated',
      id_token: 'not even a jwt',
    })
    const tokens = await refreshAccessToken(refreshInput('/token', { scope: 'https://outlook.office.com/IMAP.AccessAsUser.All offline_access' }))
    assert.equal(tokens.refreshToken, '0.AAAA-rotated')
    assert.equal(tokens.accessToken, 'eyJ0.access')
    assert.equal(tokens.idTokenClaims, undefined)
    const [sent] = recorded
    assert.equal(sent?.body.get('grant_type'), 'refresh_token')
    assert.equal(sent?.body.get('refresh_token'), REFRESH)
    assert.equal(sent?.body.get('scope'), 'https://outlook.office.com/IMAP.AccessAsUser.All offline_access')
  })

  test('when the provider does not rotate (Google), then refreshToken is absent so the old one is kept', async () => {
    routes['/token'] = json(200, { access_token: 'ya29.new', expires_in: 3599, scope: 'https://mail.google.com/', token_type: 'Bearer' })
    const tokens = await refreshAccessToken(refreshInput('/token'))
    assert.equal(tokens.refreshToken, undefined)
    assert.equal(recorded[0]?.body.get('scope'), null)
  })

  test("when Google answers its dead-token body, then oauth_invalid_grant, not transient, with Google's description", async () => {
    routes['/token'] = json(400, { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' })
    const err = await failure(refreshAccessToken(refreshInput('/token')))
    assert.equal(err.code, 'oauth_invalid_grant')
    assert.equal(err.transient, false)
    assert.equal(err.details.error_description, 'Token has been expired or revoked.')
    assert.equal(err.details.operation, 'refresh')
    assert.equal(err.details.http_status, 400)
  })

  test('when Google session control answers invalid_rapt, then the subtype is kept in details', async () => {
    routes['/token'] = json(400, { error: 'invalid_grant', error_description: 'reauth related error (invalid_rapt)', error_subtype: 'invalid_rapt' })
    const err = await failure(refreshAccessToken(refreshInput('/token')))
    assert.equal(err.code, 'oauth_invalid_grant')
    assert.equal(err.details.error_subtype, 'invalid_rapt')
  })

  test('when Microsoft answers AADSTS700082 (inactivity), then oauth_invalid_grant with the code and correlation ID', async () => {
    routes['/token'] = json(400, {
      error: 'invalid_grant',
      error_description:
        "AADSTS700082: The refresh token has expired due to inactivity. The token was issued on 2024-01-01T00:00:00Z and was inactive for 90.00:00:00.\r\nTrace ID: t-1\r\nCorrelation ID: c-1\r\nTimestamp: 2024-04-01 00:00:00Z",
      error_codes: [700082],
      trace_id: 't-1',
      correlation_id: 'c-1',
    })
    const err = await failure(refreshAccessToken(refreshInput('/token')))
    assert.equal(err.code, 'oauth_invalid_grant')
    assert.equal(err.transient, false)
    assert.equal(err.details.aadsts, 'AADSTS700082')
    assert.equal(err.details.correlation_id, 'c-1')
  })

  test('when the client is rejected with a 401 challenge, then oauth_invalid_client', async () => {
    routes['/token'] = json(
      401,
      { error: 'invalid_client', error_description: 'The OAuth client was not found.' },
      { 'www-authenticate': 'Basic realm="token"' },
    )
    const err = await failure(refreshAccessToken(refreshInput('/token', { authMethod: 'client_secret_basic' })))
    assert.equal(err.code, 'oauth_invalid_client')
    assert.equal(err.details.error_description, 'The OAuth client was not found.')

    routes['/token'] = json(401, { error: 'invalid_client', error_description: 'Unauthorized' })
    assert.equal((await failure(refreshAccessToken(refreshInput('/token')))).code, 'oauth_invalid_client')
  })

  test('when a provider echoes the client secret in its error, then the secret is blanked', async () => {
    routes['/token'] = json(400, { error: 'invalid_client', error_description: `bad secret ${CLIENT_SECRET}` })
    const err = await failure(refreshAccessToken(refreshInput('/token')))
    assert.equal(err.details.error_description, 'bad secret [redacted]')
  })

  test('when the endpoint answers HTTP 500, then oauth_provider_unavailable, transient', async () => {
    routes['/token'] = (_req, res) => {
      res.writeHead(500, { 'content-type': 'text/html' })
      res.end('<html>Internal error</html>')
    }
    const err = await failure(refreshAccessToken(refreshInput('/token')))
    assert.equal(err.code, 'oauth_provider_unavailable')
    assert.equal(err.transient, true)
    assert.equal(err.details.http_status, 500)

    routes['/token'] = json(503, { error: 'temporarily_unavailable' })
    assert.equal((await failure(refreshAccessToken(refreshInput('/token')))).transient, true)
  })

  test('when the endpoint never answers, then the deadline gives oauth_provider_unavailable with reason timeout', async () => {
    routes['/hang'] = () => {
      // Never answers; the connection is closed by the client's deadline or the after hook.
    }
    const err = await failure(refreshAccessToken(refreshInput('/hang', { timeoutMs: 200 })))
    assert.equal(err.code, 'oauth_provider_unavailable')
    assert.equal(err.details.reason, 'timeout')
    assert.equal(err.transient, true)
  })

  test('when the endpoint redirects, then oauth_endpoint_redirect and the target is never called', async () => {
    routes['/moved'] = (_req, res) => {
      res.writeHead(302, { location: `${base}/elsewhere` })
      res.end()
    }
    routes['/elsewhere'] = json(200, { access_token: 'a', token_type: 'Bearer' })
    const err = await failure(refreshAccessToken(refreshInput('/moved')))
    assert.equal(err.code, 'oauth_endpoint_redirect')
    assert.equal(err.details.http_status, 302)
    assert.deepEqual(
      recorded.map((entry) => entry.path),
      ['/moved'],
    )
  })

  test('when the endpoint answers 200 with HTML, then oauth_invalid_response (transient: the grant may be fine)', async () => {
    routes['/token'] = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end('<html>captive portal</html>')
    }
    const err = await failure(refreshAccessToken(refreshInput('/token')))
    assert.equal(err.code, 'oauth_invalid_response')
    assert.equal(err.transient, true)
  })

  test('when nothing listens, then oauth_provider_unavailable with the socket error', async () => {
    const closed = http.createServer()
    closed.listen(0, '127.0.0.1')
    await once(closed, 'listening')
    const port = (closed.address() as AddressInfo).port
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    const err = await failure(refreshAccessToken(refreshInput('', { tokenUrl: `http://127.0.0.1:${port}/token` })))
    assert.equal(err.code, 'oauth_provider_unavailable')
    assert.equal(err.details.reason, 'ECONNREFUSED')
  })

  test('when the token URL is plain http and the host is not allowed, then nothing is sent', async () => {
    routes['/token'] = json(200, { access_token: 'a', token_type: 'Bearer' })
    const err = await failure(refreshAccessToken(refreshInput('/token', { allowedPrivateHosts: [] })))
    assert.equal(err.code, 'endpoint_not_https')
    assert.equal(recorded.length, 0)
  })

  test('when a response is processed on its own, then the request/validate split gives the same result', async () => {
    const response = new Response(JSON.stringify({ access_token: 'x', token_type: 'bearer', expires_in: 10 }), {
      status: 200,
      headers: { 'content-type': 'application/json' },
    })
    const tokens = await processRefreshGrant(refreshInput('/unused'), response)
    assert.equal(tokens.accessToken, 'x')
  })
})

describe('revocation', () => {
  test('when the revocation endpoint answers 200, then the token was sent with the client credentials', async () => {
    routes['/revoke'] = (_req, res) => {
      res.writeHead(200)
      res.end()
    }
    await revokeToken({
      revocationUrl: `${base}/revoke`,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      token: REFRESH,
      tokenTypeHint: 'refresh_token',
      allowedPrivateHosts: ['127.0.0.1'],
    })
    const [sent] = recorded
    assert.equal(sent?.body.get('token'), REFRESH)
    assert.equal(sent?.body.get('token_type_hint'), 'refresh_token')
    assert.equal(sent?.body.get('client_id'), CLIENT_ID)
  })

  test("when Google answers 400 invalid_token for an already dead token, then revocation succeeds", async () => {
    routes['/revoke'] = json(400, { error: 'invalid_token', error_description: 'Token expired or revoked' })
    await revokeToken({
      revocationUrl: `${base}/revoke`,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      token: REFRESH,
      allowedPrivateHosts: ['127.0.0.1'],
    })
  })

  test('when the revocation endpoint fails with 503, then oauth_provider_unavailable', async () => {
    routes['/revoke'] = json(503, { error: 'server_error' })
    const err = await failure(
      revokeToken({
        revocationUrl: `${base}/revoke`,
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        token: REFRESH,
        allowedPrivateHosts: ['127.0.0.1'],
      }),
    )
    assert.equal(err.code, 'oauth_provider_unavailable')
    assert.equal(err.details.operation, 'revoke')
  })
})
