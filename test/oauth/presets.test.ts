import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  MICROSOFT_SCOPES,
  defaultScopeFor,
  getPreset,
  isPresetId,
  microsoftEndpoints,
  presetFormData,
  providerPresets,
} from '../../src/oauth/presets.ts'
import { isAppError } from '../../src/shared/errors.ts'

// Expected values copied from /work/shared/PROVIDERS.md.
const GMAIL_SCOPE = 'https://mail.google.com/'
const MS_IMAP = 'https://outlook.office.com/IMAP.AccessAsUser.All'
const MS_POP = 'https://outlook.office.com/POP.AccessAsUser.All'
const MS_SMTP = 'https://outlook.office.com/SMTP.Send'

describe('provider presets', () => {
  test('when listing presets, then they are gmail, microsoft365, outlook_legacy and custom in that order', () => {
    assert.deepEqual(
      providerPresets.map((preset) => preset.id),
      ['gmail', 'microsoft365', 'outlook_legacy', 'custom'],
    )
    assert.ok(isPresetId('gmail'))
    assert.ok(!isPresetId('yahoo'))
  })

  test('when reading the gmail preset, then it matches the Google facts exactly', () => {
    const gmail = getPreset('gmail')
    assert.equal(gmail.label, 'Gmail / Google Workspace')
    assert.equal(gmail.authorizationUrl, 'https://accounts.google.com/o/oauth2/v2/auth')
    assert.equal(gmail.tokenUrl, 'https://oauth2.googleapis.com/token')
    assert.equal(gmail.revocationUrl, 'https://oauth2.googleapis.com/revoke')
    assert.equal(gmail.issuer, 'https://accounts.google.com')
    assert.deepEqual(gmail.scopes, { imap: GMAIL_SCOPE, pop3: GMAIL_SCOPE, smtp: GMAIL_SCOPE })
    assert.deepEqual(gmail.authorizationParams, { access_type: 'offline', prompt: 'consent' })
    assert.deepEqual([...gmail.identityScopes], ['openid', 'email'])
    assert.equal(gmail.rotatesRefreshTokens, false)
    assert.deepEqual(gmail.hosts, {
      imap: { host: 'imap.gmail.com', port: 993, security: 'tls' },
      pop3: { host: 'pop.gmail.com', port: 995, security: 'tls' },
      smtp: { host: 'smtp.gmail.com', port: 465, security: 'tls' },
    })
    assert.equal(gmail.defaultAuthMethod, 'client_secret_post')
  })

  test('when reading the microsoft365 preset, then it uses the common tenant, Microsoft scopes with offline_access and no revocation', () => {
    const ms = getPreset('microsoft365')
    assert.equal(ms.label, 'Microsoft 365')
    assert.equal(ms.authorizationUrl, 'https://login.microsoftonline.com/common/oauth2/v2.0/authorize')
    assert.equal(ms.tokenUrl, 'https://login.microsoftonline.com/common/oauth2/v2.0/token')
    assert.equal(ms.revocationUrl, undefined)
    assert.equal(ms.defaultTenant, 'common')
    assert.deepEqual(ms.scopes, {
      imap: `${MS_IMAP} offline_access`,
      pop3: `${MS_POP} offline_access`,
      smtp: `${MS_SMTP} offline_access`,
    })
    assert.deepEqual([...ms.requiredScopes], ['offline_access'])
    assert.deepEqual([...ms.identityScopes], ['openid', 'email'])
    assert.deepEqual(ms.authorizationParams, {})
    assert.equal(ms.rotatesRefreshTokens, true)
    assert.deepEqual(ms.hosts, {
      imap: { host: 'outlook.office365.com', port: 993, security: 'tls' },
      pop3: { host: 'outlook.office365.com', port: 995, security: 'tls' },
      smtp: { host: 'smtp.office365.com', port: 587, security: 'starttls' },
    })
  })

  test('when reading any Microsoft scope, then it never contains the Gmail scope', () => {
    for (const id of ['microsoft365', 'outlook_legacy'] as const) {
      for (const protocol of ['imap', 'pop3', 'smtp'] as const) {
        const scope = defaultScopeFor(id, protocol)
        assert.ok(!scope.includes(GMAIL_SCOPE), `${id}/${protocol}`)
        assert.ok(scope.split(' ').includes('offline_access'), `${id}/${protocol}`)
        assert.notEqual(scope, defaultScopeFor('gmail', protocol))
      }
    }
  })

  test('when reading the outlook_legacy preset, then it has the login.live.com endpoints and Outlook.com hosts', () => {
    const legacy = getPreset('outlook_legacy')
    assert.equal(legacy.label, 'Outlook.com (legacy Live)')
    assert.equal(legacy.authorizationUrl, 'https://login.live.com/oauth20_authorize.srf')
    assert.equal(legacy.tokenUrl, 'https://login.live.com/oauth20_token.srf')
    assert.equal(legacy.revocationUrl, undefined)
    assert.deepEqual(legacy.scopes, MICROSOFT_SCOPES)
    assert.deepEqual(legacy.hosts, {
      imap: { host: 'outlook.office365.com', port: 993, security: 'tls' },
      pop3: { host: 'outlook.office365.com', port: 995, security: 'tls' },
      smtp: { host: 'smtp-mail.outlook.com', port: 587, security: 'starttls' },
    })
  })

  test('when reading the custom preset, then every field is empty', () => {
    const custom = getPreset('custom')
    assert.equal(custom.authorizationUrl, '')
    assert.equal(custom.tokenUrl, '')
    assert.equal(custom.revocationUrl, undefined)
    assert.deepEqual(custom.hosts, {})
    assert.equal(defaultScopeFor('custom', 'imap'), '')
    assert.deepEqual([...custom.identityScopes], [])
  })

  test('when asking for the default scope per protocol, then Microsoft gets the protocol scope', () => {
    assert.equal(defaultScopeFor('gmail', 'smtp'), GMAIL_SCOPE)
    assert.equal(defaultScopeFor('microsoft365', 'imap'), `${MS_IMAP} offline_access`)
    assert.equal(defaultScopeFor('microsoft365', 'pop3'), `${MS_POP} offline_access`)
    assert.equal(defaultScopeFor('microsoft365', 'smtp'), `${MS_SMTP} offline_access`)
  })

  test('when a tenant is given, then the Microsoft endpoints use it and a tenant ID pins the issuer', () => {
    const domain = microsoftEndpoints('contoso.onmicrosoft.com')
    assert.equal(domain.authorizationUrl, 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize')
    assert.equal(domain.tokenUrl, 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token')
    assert.equal(domain.issuer, 'https://login.microsoftonline.com/{tenantid}/v2.0')
    const id = '72f988bf-86f1-41af-91ab-2d7cd011db47'
    assert.equal(getPreset('microsoft365').endpoints(id).issuer, `https://login.microsoftonline.com/${id}/v2.0`)
    assert.equal(getPreset('microsoft365').endpoints().tokenUrl, getPreset('microsoft365').tokenUrl)
  })

  test('when a tenant contains a path, then it is refused', () => {
    assert.throws(() => microsoftEndpoints('common/../evil'), (err) => isAppError(err, 'oauth_invalid_tenant'))
  })

  test('when an unknown preset is asked for, then oauth_unknown_preset is thrown', () => {
    assert.throws(() => getPreset('yahoo'), (err) => isAppError(err, 'oauth_unknown_preset'))
  })

  test('when serializing presets for the browser form, then the JSON round-trips and carries every field', () => {
    const data = presetFormData()
    assert.deepEqual(JSON.parse(JSON.stringify(data)), data)
    const gmail = data.find((preset) => preset.id === 'gmail')!
    assert.equal(gmail.revocationUrl, 'https://oauth2.googleapis.com/revoke')
    assert.equal(gmail.tenant, null)
    assert.deepEqual(gmail.hosts.smtp, { host: 'smtp.gmail.com', port: 465, security: 'tls' })
    const ms = data.find((preset) => preset.id === 'microsoft365')!
    assert.equal(ms.revocationUrl, null)
    assert.equal(ms.tenant?.default, 'common')
    assert.equal(
      ms.tenant?.tokenUrlTemplate.replace('{tenant}', 'common'),
      'https://login.microsoftonline.com/common/oauth2/v2.0/token',
    )
    assert.equal(ms.scopes.pop3, `${MS_POP} offline_access`)
  })
})
