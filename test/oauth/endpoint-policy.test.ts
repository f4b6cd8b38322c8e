import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  assertResolvedAddressesAllowed,
  checkEndpointUrl,
  checkMailHost,
  parseAllowedPrivateHosts,
  type LookupFunction,
} from '../../src/oauth/endpoint-policy.ts'
import { AppError } from '../../src/shared/errors.ts'

const token = (allowedPrivateHosts: string[] = [], lookup?: LookupFunction) => ({
  allowedPrivateHosts,
  purpose: 'token' as const,
  ...(lookup ? { lookup } : {}),
})

/** A resolver answering from a table, so that public names need no network. */
function fakeDns(table: Record<string, string[]>): LookupFunction {
  return async (hostname) => {
    const addresses = table[hostname]
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' })
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))
  }
}

async function refusal(promise: Promise<unknown>): Promise<AppError> {
  try {
    await promise
  } catch (err) {
    assert.ok(err instanceof AppError, String(err))
    return err
  }
  assert.fail('expected a refusal')
}

describe('endpoint policy', () => {
  test('when an https URL names a public address, then it is accepted and returned parsed', async () => {
    const url = await checkEndpointUrl('https://8.8.8.8/token?x=1', token())
    assert.equal(url.href, 'https://8.8.8.8/token?x=1')
  })

  test('when an https host name resolves to public addresses only, then it is accepted', async () => {
    const dns = fakeDns({ 'oauth2.googleapis.com': ['142.250.74.10', '2a00:1450:4007:80c::200a'] })
    const url = await checkEndpointUrl('https://oauth2.googleapis.com/token', token([], dns))
    assert.equal(url.hostname, 'oauth2.googleapis.com')
  })

  test('when one of several resolved addresses is private, then the host is refused', async () => {
    const dns = fakeDns({ 'mixed.example.com': ['93.184.216.34', '10.0.0.7'] })
    const err = await refusal(checkEndpointUrl('https://mixed.example.com/token', token([], dns)))
    assert.equal(err.code, 'endpoint_private_address')
    assert.equal(err.details.address, '10.0.0.7')
  })

  test('when plain http points to an allowed loopback host, then it is accepted', async () => {
    const url = await checkEndpointUrl('http://127.0.0.1:8080/token', token(['127.0.0.1']))
    assert.equal(url.port, '8080')
  })

  test('when plain http points to a loopback host that is not allowed, then endpoint_not_https', async () => {
    const err = await refusal(checkEndpointUrl('http://127.0.0.1:8080/token', token()))
    assert.equal(err.code, 'endpoint_not_https')
    assert.match(err.message, /DESKMAIL_ALLOWED_PRIVATE_HOSTS/)
  })

  test('when plain http points to a non-loopback host, then endpoint_not_https even if the host is allowed', async () => {
    assert.equal((await refusal(checkEndpointUrl('http://8.8.8.8/token', token(['8.8.8.8'])))).code, 'endpoint_not_https')
    assert.equal((await refusal(checkEndpointUrl('http://10.0.0.5/token', token(['10.0.0.0/8'])))).code, 'endpoint_not_https')
  })

  test('when the host is in 10.0.0.0/8, then it is refused with the host and the env var named', async () => {
    const err = await refusal(checkEndpointUrl('https://10.1.2.3/token', token()))
    assert.equal(err.code, 'endpoint_private_address')
    assert.match(err.message, /10\.1\.2\.3/)
    assert.match(err.message, /DESKMAIL_ALLOWED_PRIVATE_HOSTS/)
    assert.equal(err.details.range, 'private')
  })

  test('when a CIDR allow-list covers the address, then it is accepted', async () => {
    await checkEndpointUrl('https://10.1.2.3/token', token(['10.0.0.0/8']))
    const err = await refusal(checkEndpointUrl('https://10.1.2.3/token', token(['10.2.0.0/16'])))
    assert.equal(err.code, 'endpoint_private_address')
  })

  test('when the host is link-local (cloud metadata 169.254.169.254), then it is refused', async () => {
    const err = await refusal(checkEndpointUrl('https://169.254.169.254/latest/meta-data', token()))
    assert.equal(err.details.range, 'linkLocal')
  })

  test('when the host is ::1, then it is refused as loopback', async () => {
    const err = await refusal(checkEndpointUrl('https://[::1]:8443/token', token()))
    assert.equal(err.code, 'endpoint_private_address')
    assert.equal(err.details.range, 'loopback')
  })

  test('when the host is in fc00::/7, then it is refused as unique-local', async () => {
    for (const host of ['[fc00::1]', '[fd12:3456::1]']) {
      const err = await refusal(checkEndpointUrl(`https://${host}/token`, token()))
      assert.equal(err.details.range, 'uniqueLocal', host)
    }
    await checkEndpointUrl('https://[fd12:3456::1]/token', token(['fc00::/7']))
  })

  test('when the host is an IPv4-mapped IPv6 loopback, then it is judged as IPv4 and refused', async () => {
    const err = await refusal(checkEndpointUrl('https://[::ffff:127.0.0.1]/token', token()))
    assert.equal(err.details.range, 'loopback')
    // Allowing the IPv4 address also allows its mapped form.
    await checkEndpointUrl('https://[::ffff:127.0.0.1]/token', token(['127.0.0.1']))
  })

  test('when the host is CGNAT, unspecified, multicast, or NAT64 of loopback, then it is refused', async () => {
    for (const host of ['100.64.0.1', '0.0.0.0', '224.0.0.1', '[64:ff9b::7f00:1]', '[2002:a00:1::1]', '198.51.100.7']) {
      const err = await refusal(checkEndpointUrl(`https://${host}/token`, token()))
      assert.equal(err.code, 'endpoint_private_address', host)
    }
  })

  test('when the host is NAT64 of a public address, then it is accepted (IPv6-only networks)', async () => {
    await checkEndpointUrl('https://[64:ff9b::808:808]/token', token())
  })

  test('when a DNS name resolves to loopback (localhost), then it is refused unless the name is allowed', async () => {
    const err = await refusal(checkEndpointUrl('https://localhost/token', token()))
    assert.equal(err.code, 'endpoint_private_address')
    assert.equal(err.details.host, 'localhost')
    assert.equal(err.details.range, 'loopback')
    await checkEndpointUrl('https://localhost/token', token(['localhost']))
    await checkEndpointUrl('http://localhost:8080/token', token(['LOCALHOST']))
  })

  test('when the URL is malformed, not http(s), has a fragment or credentials, then endpoint_invalid_url', async () => {
    for (const url of ['not a url', 'ftp://example.com/token', 'https://example.com/token#frag', 'https://user:pw@example.com/token']) {
      const err = await refusal(checkEndpointUrl(url, token()))
      assert.equal(err.code, 'endpoint_invalid_url', url)
      assert.ok(!err.message.includes('pw@'), url)
    }
  })

  test('when DNS cannot resolve the host, then host_unresolvable is transient', async () => {
    const err = await refusal(checkEndpointUrl('https://nowhere.example.com/token', token([], fakeDns({}))))
    assert.equal(err.code, 'host_unresolvable')
    assert.equal(err.transient, true)
    assert.equal(err.details.reason, 'ENOTFOUND')
  })

  test('when a mail host is checked, then the same address rules apply without a scheme', async () => {
    await checkMailHost('imap.gmail.com', { allowedPrivateHosts: [], lookup: fakeDns({ 'imap.gmail.com': ['142.250.1.108'] }) })
    await checkMailHost('127.0.0.1', { allowedPrivateHosts: ['127.0.0.0/8'] })
    const err = await refusal(checkMailHost('192.168.1.20', { allowedPrivateHosts: [] }))
    assert.equal(err.code, 'endpoint_private_address')
    assert.match(err.message, /mail server/)
    assert.equal((await refusal(checkMailHost('bad host!', { allowedPrivateHosts: [] }))).code, 'endpoint_invalid_url')
  })

  test('when addresses are judged at connect time, then a rebinding to a private address is refused', () => {
    assert.doesNotThrow(() =>
      assertResolvedAddressesAllowed('idp.example.com', [{ address: '93.184.216.34' }], { allowedPrivateHosts: [], purpose: 'token' }),
    )
    assert.throws(
      () => assertResolvedAddressesAllowed('idp.example.com', [{ address: '127.0.0.1' }], { allowedPrivateHosts: [], purpose: 'token' }),
      (err) => err instanceof AppError && err.code === 'endpoint_private_address',
    )
  })

  test('when DESKMAIL_ALLOWED_PRIVATE_HOSTS is parsed, then entries are normalized', () => {
    assert.deepEqual(parseAllowedPrivateHosts(undefined), [])
    assert.deepEqual(parseAllowedPrivateHosts(''), [])
    assert.deepEqual(parseAllowedPrivateHosts(' 10.0.0.0/8, Mail.Internal.  [::1]\n127.0.0.1,,fd00::/8 '), [
      '10.0.0.0/8',
      'mail.internal',
      '::1',
      '127.0.0.1',
      'fd00::/8',
    ])
  })

  test('when DESKMAIL_ALLOWED_PRIVATE_HOSTS has a malformed entry, then parsing fails loudly', () => {
    for (const value of ['10.0.0.0/99', 'http://x', 'a b/c']) {
      assert.throws(
        () => parseAllowedPrivateHosts(value),
        (err) => err instanceof AppError && err.code === 'allowed_private_hosts_invalid',
        value,
      )
    }
  })
})
