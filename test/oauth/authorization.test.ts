import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, test } from 'node:test'
import {
  callbackErrorToAppError,
  createAuthorizationRequest,
  hashState,
  isCallbackError,
  parseCallbackParams,
  type AuthorizationRequestInput,
} from '../../src/oauth/authorization.ts'
import { getPreset } from '../../src/oauth/presets.ts'
import { isAppError } from '../../src/shared/errors.ts'

const REDIRECT = 'https://desk.example.com/oauth/callback'

function request(overrides: Partial<AuthorizationRequestInput> & Pick<AuthorizationRequestInput, 'presetId'>) {
  const preset = getPreset(overrides.presetId)
  const result = createAuthorizationRequest({
    authorizationUrl: preset.authorizationUrl || 'https://idp.example.com/authorize',
    clientId: 'client-1',
    redirectUri: REDIRECT,
    scope: preset.scopes.imap,
    loginHint: 'support@example.com',
    ...overrides,
  })
  return { ...result, params: new URL(result.url).searchParams }
}

function scopes(params: URLSearchParams): string[] {
  return (params.get('scope') ?? '').split(' ')
}

describe('authorization request', () => {
  test('when a request is built, then it has response_type=code, a 256-bit state and a PKCE S256 challenge of the verifier', () => {
    const { params, state, codeVerifier, stateHash, url } = request({ presetId: 'gmail' })
    assert.ok(url.startsWith('https://accounts.google.com/o/oauth2/v2/auth?'))
    assert.equal(params.get('response_type'), 'code')
    assert.equal(params.get('client_id'), 'client-1')
    assert.equal(params.get('redirect_uri'), REDIRECT)
    assert.equal(params.get('state'), state)
    assert.equal(Buffer.from(state, 'base64url').length, 32)
    assert.equal(params.get('code_challenge_method'), 'S256')
    assert.equal(params.get('code_challenge'), createHash('sha256').update(codeVerifier).digest('base64url'))
    assert.ok(codeVerifier.length >= 43 && codeVerifier.length <= 128)
    assert.equal(stateHash, hashState(state))
  })

  test('when two requests are built, then their state, verifier and nonce differ', () => {
    const a = request({ presetId: 'gmail' })
    const b = request({ presetId: 'gmail' })
    assert.notEqual(a.state, b.state)
    assert.notEqual(a.codeVerifier, b.codeVerifier)
    assert.notEqual(a.nonce, b.nonce)
  })

  test('when the preset is gmail, then access_type=offline, prompt=consent, openid email and login_hint are sent', () => {
    const { params, nonce, scope } = request({ presetId: 'gmail' })
    assert.equal(params.get('access_type'), 'offline')
    assert.equal(params.get('prompt'), 'consent')
    assert.deepEqual(scopes(params), ['https://mail.google.com/', 'openid', 'email'])
    assert.equal(scope, params.get('scope'))
    assert.equal(params.get('login_hint'), 'support@example.com')
    assert.ok(nonce)
    assert.equal(params.get('nonce'), nonce)
  })

  test('when the preset is microsoft365, then offline_access and openid email are in the scope and no Google parameters', () => {
    const { params, url } = request({ presetId: 'microsoft365' })
    assert.ok(url.startsWith('https://login.microsoftonline.com/common/oauth2/v2.0/authorize?'))
    assert.deepEqual(scopes(params), ['https://outlook.office.com/IMAP.AccessAsUser.All', 'offline_access', 'openid', 'email'])
    assert.equal(params.get('access_type'), null)
    assert.equal(params.get('prompt'), null)
    assert.equal(params.get('login_hint'), 'support@example.com')
  })

  test('when the Microsoft scope lacks offline_access, then it is added once', () => {
    const { params } = request({ presetId: 'microsoft365', scope: 'https://outlook.office.com/SMTP.Send' })
    assert.deepEqual(scopes(params), ['https://outlook.office.com/SMTP.Send', 'offline_access', 'openid', 'email'])
    const twice = request({ presetId: 'microsoft365', scope: 'offline_access https://outlook.office.com/SMTP.Send openid' })
    assert.deepEqual(scopes(twice.params), ['offline_access', 'https://outlook.office.com/SMTP.Send', 'openid', 'email'])
  })

  test('when the preset is outlook_legacy, then login.live.com gets the Microsoft scope with offline_access', () => {
    const { url, params } = request({ presetId: 'outlook_legacy', scope: getPreset('outlook_legacy').scopes.pop3 })
    assert.ok(url.startsWith('https://login.live.com/oauth20_authorize.srf?'))
    assert.deepEqual(scopes(params), ['https://outlook.office.com/POP.AccessAsUser.All', 'offline_access', 'openid', 'email'])
  })

  test('when the preset is custom, then identity scopes are sent only when requestIdentity is set', () => {
    const plain = request({ presetId: 'custom', scope: 'mail', authorizationUrl: 'https://idp.example.com/authorize?tenant=a' })
    assert.deepEqual(scopes(plain.params), ['mail'])
    assert.equal(plain.nonce, undefined)
    assert.equal(plain.params.get('nonce'), null)
    assert.equal(plain.params.get('tenant'), 'a')
    const identity = request({ presetId: 'custom', scope: 'mail', requestIdentity: true })
    assert.deepEqual(scopes(identity.params), ['mail', 'openid', 'email'])
    assert.ok(identity.nonce)
  })

  test('when extra parameters try to replace state or the challenge, then they are ignored', () => {
    const { params, state } = request({
      presetId: 'custom',
      scope: 'mail',
      extraParams: { state: 'attacker', code_challenge_method: 'plain', prompt: 'consent' },
    })
    assert.equal(params.get('state'), state)
    assert.equal(params.get('code_challenge_method'), 'S256')
    assert.equal(params.get('prompt'), 'consent')
  })

  test('when no login hint is given, then login_hint is absent', () => {
    const { params } = request({ presetId: 'gmail', loginHint: ' ' })
    assert.equal(params.get('login_hint'), null)
  })

  test('when the authorization URL has a fragment, then endpoint_invalid_url', () => {
    assert.throws(
      () => request({ presetId: 'custom', scope: 'x', authorizationUrl: 'https://idp.example.com/auth#x' }),
      (err) => isAppError(err, 'endpoint_invalid_url'),
    )
  })

  test('when a state is hashed, then the hash is stable, base64url SHA-256 and not the state', () => {
    const state = 'abc'
    assert.equal(hashState(state), createHash('sha256').update('abc').digest('base64url'))
    assert.equal(hashState(state), hashState('abc'))
    assert.notEqual(hashState(state), state)
  })
})

describe('callback parameters', () => {
  const callback = (query: string) => parseCallbackParams(new URL(`${REDIRECT}?${query}`))

  test('when the callback carries code, state and iss, then they are returned', () => {
    assert.deepEqual(callback('code=c1&state=s1&iss=https%3A%2F%2Fidp.example.com'), {
      code: 'c1',
      state: 's1',
      iss: 'https://idp.example.com',
    })
    assert.deepEqual(callback('code=c1&state=s1&scope=x'), { code: 'c1', state: 's1' })
  })

  test('when the callback carries an error, then the error wins and its state is kept', () => {
    const result = callback('error=access_denied&error_description=The+user+cancelled&state=s1&code=c1')
    assert.ok(isCallbackError(result))
    assert.deepEqual(result, { error: 'access_denied', errorDescription: 'The user cancelled', state: 's1' })
  })

  test('when state or code is missing, or a parameter is repeated, then invalid_request', () => {
    for (const query of ['code=c1', 'state=s1', 'code=c1&state=', 'code=c1&state=s1&state=s2', 'code=a&code=b&state=s']) {
      const result = callback(query)
      assert.ok(isCallbackError(result), query)
      assert.equal(result.error, 'invalid_request', query)
    }
  })

  test('when a callback error is mapped, then access_denied and AADSTS65001 get their codes', () => {
    assert.equal(callbackErrorToAppError({ error: 'access_denied' }).code, 'oauth_access_denied')
    const consent = callbackErrorToAppError({
      error: 'invalid_client',
      errorDescription: 'AADSTS65001: The user or administrator has not consented to use the application.',
    })
    assert.equal(consent.code, 'oauth_consent_required')
    assert.equal(consent.details.aadsts, 'AADSTS65001')
    assert.equal(callbackErrorToAppError({ error: 'weird_error' }).code, 'oauth_authorization_failed')
    assert.equal(callbackErrorToAppError({ error: 'temporarily_unavailable' }).transient, true)
  })
})
