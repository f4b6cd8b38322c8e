import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { checkRedirectUriRegistered, parseGoogleClientJson } from '../../src/oauth/google-client-json.ts'
import { AppError, isAppError } from '../../src/shared/errors.ts'

const SECRET = 'GOCSPX-not-a-real-secret'

function webClient(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    client_id: '1234-abc.apps.googleusercontent.com',
    project_id: 'deskmail-test',
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: 'https://oauth2.googleapis.com/token',
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    client_secret: SECRET,
    redirect_uris: ['https://desk.example.com/oauth/callback'],
    ...overrides,
  }
}

function thrown(fn: () => unknown): AppError {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof AppError)
    return err
  }
  assert.fail('expected an AppError')
}

describe('Google client JSON', () => {
  test('when a web client file is parsed, then every field is mapped', () => {
    const config = parseGoogleClientJson(JSON.stringify({ web: webClient() }))
    assert.deepEqual(config, {
      clientId: '1234-abc.apps.googleusercontent.com',
      clientSecret: SECRET,
      authorizationUrl: 'https://accounts.google.com/o/oauth2/auth',
      tokenUrl: 'https://oauth2.googleapis.com/token',
      redirectUris: ['https://desk.example.com/oauth/callback'],
      projectId: 'deskmail-test',
    })
  })

  test('when the file is a Desktop app ("installed") client, then it is refused with advice to create a Web client', () => {
    const err = thrown(() => parseGoogleClientJson(JSON.stringify({ installed: webClient({ redirect_uris: ['http://localhost'] }) })))
    assert.equal(err.code, 'google_json_installed_client')
    assert.match(err.message, /Desktop app client \("installed"\); create a Web application client/)
  })

  test('when redirect_uris is missing, then the list is empty', () => {
    const { redirect_uris: _omit, ...rest } = webClient()
    const config = parseGoogleClientJson(JSON.stringify({ web: rest }))
    assert.deepEqual(config.redirectUris, [])
  })

  test('when an older file carries revoke_uri, then it becomes the revocation URL', () => {
    const config = parseGoogleClientJson(
      JSON.stringify({ web: webClient({ revoke_uri: 'https://oauth2.googleapis.com/revoke' }) }),
    )
    assert.equal(config.revocationUrl, 'https://oauth2.googleapis.com/revoke')
  })

  test('when the file has a byte-order mark and surrounding whitespace, then it still parses', () => {
    const config = parseGoogleClientJson(`\uFEFF\n  ${JSON.stringify({ web: webClient() })}\n`)
    assert.equal(config.clientId, '1234-abc.apps.googleusercontent.com')
  })

  test('when the text is not JSON, then google_json_invalid is thrown', () => {
    const err = thrown(() => parseGoogleClientJson('<html>not json</html>'))
    assert.equal(err.code, 'google_json_invalid')
  })

  test('when a required field is missing, then the error names the field and not the secret', () => {
    const { client_secret: _omit, ...rest } = webClient()
    const err = thrown(() => parseGoogleClientJson(JSON.stringify({ web: rest })))
    assert.equal(err.code, 'google_json_invalid')
    assert.match(err.message, /"client_secret"/)
    assert.equal(err.details.field, 'client_secret')

    const noToken = thrown(() => parseGoogleClientJson(JSON.stringify({ web: webClient({ token_uri: '' }) })))
    assert.match(noToken.message, /"token_uri"/)
    assert.ok(!noToken.message.includes(SECRET))
  })

  test('when the JSON has neither web nor installed, then the missing web section is named', () => {
    const err = thrown(() => parseGoogleClientJson(JSON.stringify({ other: {} })))
    assert.equal(err.code, 'google_json_invalid')
    assert.equal(err.details.field, 'web')
    assert.ok(isAppError(thrown(() => parseGoogleClientJson('[]')), 'google_json_invalid'))
  })

  test('when our redirect URI is registered exactly, then there is no warning', () => {
    assert.equal(
      checkRedirectUriRegistered(['https://a.example/cb', 'https://desk.example.com/oauth/callback'], 'https://desk.example.com/oauth/callback'),
      undefined,
    )
  })

  test('when the registered URI differs only in case or trailing slash, then the warning shows both', () => {
    const warning = checkRedirectUriRegistered(['https://Desk.example.com/oauth/callback/'], 'https://desk.example.com/oauth/callback')
    assert.ok(warning)
    assert.match(warning, /https:\/\/Desk\.example\.com\/oauth\/callback\//)
    assert.match(warning, /add https:\/\/desk\.example\.com\/oauth\/callback/)
  })

  test('when no redirect URI is registered, then the warning tells which one to add', () => {
    const warning = checkRedirectUriRegistered([], 'https://desk.example.com/oauth/callback')
    assert.match(warning ?? '', /add https:\/\/desk\.example\.com\/oauth\/callback/)
  })
})
