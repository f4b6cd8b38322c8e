/**
 * End to end against the oidc-provider stand-in (test/harness/oauth-server.ts): authorization
 * request, headless login and consent, code exchange with PKCE, refresh, rotation, revocation.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  checkConsentedAccount,
  createAuthorizationRequest,
  exchangeAuthorizationCode,
  isCallbackError,
  parseCallbackParams,
  refreshAccessToken,
  revokeToken,
  type AuthorizationRequestInput,
  type CallbackSuccess,
} from '../../src/oauth/index.ts'
import { AppError } from '../../src/shared/errors.ts'
import { startOAuthServer, type OAuthServer } from '../harness/oauth-server.ts'

const REDIRECT = 'http://127.0.0.1:9/oauth/callback'
const MAILBOX = 'support@example.test'
const allowedPrivateHosts = ['127.0.0.1']

let server: OAuthServer

before(async () => {
  server = await startOAuthServer()
  server.registerClient({ client_id: 'google-like', client_secret: 'google-secret', redirect_uris: [REDIRECT] })
  server.registerClient({
    client_id: 'microsoft-like',
    client_secret: 'microsoft-secret',
    redirect_uris: [REDIRECT],
    rotateRefreshTokens: true,
  })
  server.registerClient({
    client_id: 'basic-auth.client-1',
    client_secret: 'basic-secret-with.dots-and-dashes',
    redirect_uris: [REDIRECT],
    tokenEndpointAuthMethod: 'client_secret_basic',
  })
})

after(async () => {
  await server.stop()
})

async function consent(input: Omit<AuthorizationRequestInput, 'authorizationUrl' | 'redirectUri'>) {
  const request = createAuthorizationRequest({ ...input, authorizationUrl: server.authorizationUrl, redirectUri: REDIRECT })
  const callbackUrl = await server.authorizeHeadless(request.url, { login: MAILBOX })
  const callback = parseCallbackParams(new URL(callbackUrl))
  assert.ok(!isCallbackError(callback), JSON.stringify(callback))
  assert.equal(callback.state, request.state)
  return { request, callback: callback as CallbackSuccess }
}

async function rejected(promise: Promise<unknown>): Promise<AppError> {
  try {
    await promise
  } catch (err) {
    assert.ok(err instanceof AppError, String(err))
    return err
  }
  assert.fail('expected a rejection')
}

describe('OAuth flow against oidc-provider', () => {
  test('when a Google-like flow runs, then PKCE exchange yields tokens and the consenting account, and refresh works', async () => {
    const { request, callback } = await consent({
      clientId: 'google-like',
      scope: 'https://mail.google.com/',
      presetId: 'gmail',
      loginHint: MAILBOX,
    })
    // oidc-provider sends RFC 9207 `iss`; it is checked against the expected issuer.
    assert.equal(callback.iss, server.issuer)
    const tokens = await exchangeAuthorizationCode({
      tokenUrl: server.tokenUrl,
      clientId: 'google-like',
      clientSecret: 'google-secret',
      redirectUri: REDIRECT,
      code: callback.code,
      codeVerifier: request.codeVerifier,
      expectedIssuer: server.issuer,
      expectedNonce: request.nonce,
      callbackParams: callback,
      allowedPrivateHosts,
    })
    assert.ok(tokens.accessToken)
    assert.ok(tokens.refreshToken)
    assert.equal(tokens.scope, 'https://mail.google.com/')
    assert.equal(tokens.idTokenClaims?.email, MAILBOX)
    assert.equal(tokens.idTokenClaims?.aud, 'google-like')
    assert.equal(checkConsentedAccount(tokens.idTokenClaims, MAILBOX.toUpperCase()), MAILBOX)

    const refreshed = await refreshAccessToken({
      tokenUrl: server.tokenUrl,
      clientId: 'google-like',
      clientSecret: 'google-secret',
      refreshToken: tokens.refreshToken!,
      allowedPrivateHosts,
    })
    assert.ok(refreshed.accessToken)
    assert.notEqual(refreshed.accessToken, tokens.accessToken)
    assert.ok(refreshed.expiresAt.getTime() > Date.now())

    // The code is single-use.
    const replay = await rejected(
      exchangeAuthorizationCode({
        tokenUrl: server.tokenUrl,
        clientId: 'google-like',
        clientSecret: 'google-secret',
        redirectUri: REDIRECT,
        code: callback.code,
        codeVerifier: request.codeVerifier,
        allowedPrivateHosts,
      }),
    )
    assert.equal(replay.code, 'oauth_invalid_grant')
  })

  test('when the code verifier is not the one of the request, then the exchange fails with oauth_invalid_grant', async () => {
    const { callback } = await consent({ clientId: 'google-like', scope: 'https://mail.google.com/', presetId: 'gmail' })
    const err = await rejected(
      exchangeAuthorizationCode({
        tokenUrl: server.tokenUrl,
        clientId: 'google-like',
        clientSecret: 'google-secret',
        redirectUri: REDIRECT,
        code: callback.code,
        codeVerifier: createAuthorizationRequest({
          authorizationUrl: server.authorizationUrl,
          clientId: 'google-like',
          redirectUri: REDIRECT,
          scope: 'x',
          presetId: 'gmail',
        }).codeVerifier,
        allowedPrivateHosts,
      }),
    )
    assert.equal(err.code, 'oauth_invalid_grant')
    assert.equal(err.transient, false)
  })

  test('when a Microsoft-like client rotates refresh tokens, then each refresh returns a new one and the old one is dead', async () => {
    // The stand-in, like oidc-provider, honours offline_access only with prompt=consent.
    const { request, callback } = await consent({
      clientId: 'microsoft-like',
      scope: 'https://outlook.office.com/IMAP.AccessAsUser.All offline_access',
      presetId: 'custom',
      requestIdentity: true,
      extraParams: { prompt: 'consent' },
    })
    const base = { tokenUrl: server.tokenUrl, clientId: 'microsoft-like', clientSecret: 'microsoft-secret', allowedPrivateHosts }
    const tokens = await exchangeAuthorizationCode({
      ...base,
      redirectUri: REDIRECT,
      code: callback.code,
      codeVerifier: request.codeVerifier,
      expectedIssuer: server.issuer,
      expectedNonce: request.nonce,
      callbackParams: callback,
    })
    const first = tokens.refreshToken!
    const rotated = await refreshAccessToken({ ...base, refreshToken: first })
    assert.ok(rotated.refreshToken)
    assert.notEqual(rotated.refreshToken, first)

    const reuse = await rejected(refreshAccessToken({ ...base, refreshToken: first }))
    assert.equal(reuse.code, 'oauth_invalid_grant')
  })

  test('when the client uses client_secret_basic, then the form-encoded credentials are accepted', async () => {
    const { request, callback } = await consent({
      clientId: 'basic-auth.client-1',
      scope: 'https://mail.google.com/',
      presetId: 'gmail',
    })
    const tokens = await exchangeAuthorizationCode({
      tokenUrl: server.tokenUrl,
      clientId: 'basic-auth.client-1',
      clientSecret: 'basic-secret-with.dots-and-dashes',
      authMethod: 'client_secret_basic',
      redirectUri: REDIRECT,
      code: callback.code,
      codeVerifier: request.codeVerifier,
      expectedIssuer: server.issuer,
      expectedNonce: request.nonce,
      allowedPrivateHosts,
    })
    assert.ok(tokens.refreshToken)
  })

  test('when the refresh token is revoked (RFC 7009), then the next refresh fails with oauth_invalid_grant', async () => {
    const { request, callback } = await consent({ clientId: 'google-like', scope: 'https://mail.google.com/', presetId: 'gmail' })
    const base = { clientId: 'google-like', clientSecret: 'google-secret', allowedPrivateHosts }
    const tokens = await exchangeAuthorizationCode({
      ...base,
      tokenUrl: server.tokenUrl,
      redirectUri: REDIRECT,
      code: callback.code,
      codeVerifier: request.codeVerifier,
    })
    await revokeToken({ ...base, revocationUrl: server.revocationUrl, token: tokens.refreshToken!, tokenTypeHint: 'refresh_token' })
    const err = await rejected(refreshAccessToken({ ...base, tokenUrl: server.tokenUrl, refreshToken: tokens.refreshToken! }))
    assert.equal(err.code, 'oauth_invalid_grant')
  })
})
