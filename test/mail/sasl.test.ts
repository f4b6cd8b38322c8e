import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isAppError } from '../../src/shared/errors.ts'
import {
  OAUTHBEARER_ERROR_ANSWER,
  XOAUTH2_ERROR_ANSWER,
  oauthbearerInitialResponse,
  parseSaslErrorChallenge,
  xoauth2InitialResponse,
} from '../../src/mail/sasl.ts'

describe('xoauth2InitialResponse', () => {
  it("when given Google's documented example, then it produces Google's documented base64", () => {
    // https://developers.google.com/workspace/gmail/imap/xoauth2-protocol (example initial client response)
    const token = 'ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg'
    const b64 = xoauth2InitialResponse('someuser@example.com', token)
    assert.equal(
      b64,
      'dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==',
    )
  })

  it('when decoded, then the bytes are user=, \\x01, auth=Bearer, and two \\x01 at the end', () => {
    const raw = Buffer.from(xoauth2InitialResponse('shared@contoso.com', 'tok.en-123'), 'base64')
    assert.deepEqual(raw, Buffer.from('user=shared@contoso.com\x01auth=Bearer tok.en-123\x01\x01', 'latin1'))
  })

  it('when the user or the token holds a control character, then it refuses without quoting the token', () => {
    assert.throws(
      () => xoauth2InitialResponse('a@b.c\x01auth=Bearer evil', 'token'),
      (err) => isAppError(err, 'sasl_invalid_value'),
    )
    assert.throws(
      () => xoauth2InitialResponse('a@b.c', 'secret-token\r\nDELE 1'),
      (err) => isAppError(err, 'sasl_invalid_value') && !err.message.includes('secret-token'),
    )
  })

  it('when the token is empty, then it refuses', () => {
    assert.throws(() => xoauth2InitialResponse('a@b.c', ''), (err) => isAppError(err, 'sasl_invalid_value'))
  })
})

describe('oauthbearerInitialResponse', () => {
  it("when given RFC 7628's example, then it produces the RFC's bytes", () => {
    // RFC 7628 section 4.1
    const b64 = oauthbearerInitialResponse({
      user: 'user@example.com',
      host: 'server.example.com',
      port: 143,
      accessToken: 'vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==',
    })
    assert.equal(
      b64,
      'bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB',
    )
    assert.equal(
      Buffer.from(b64, 'base64').toString('latin1'),
      'n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01',
    )
  })

  it('when the user holds "," or "=", then they are escaped as =2C and =3D (RFC 5801 section 4)', () => {
    const raw = Buffer.from(
      oauthbearerInitialResponse({ user: 'a=b,c@x.y', host: '127.0.0.1', port: 993, accessToken: 't' }),
      'base64',
    ).toString('latin1')
    assert.ok(raw.startsWith('n,a=a=3Db=2Cc@x.y,\x01'))
  })

  it('when the port is not a TCP port, then it refuses', () => {
    assert.throws(
      () => oauthbearerInitialResponse({ user: 'u@x.y', host: 'h', port: 0, accessToken: 't' }),
      (err) => isAppError(err, 'sasl_invalid_value'),
    )
  })
})

describe('error answers', () => {
  it('when answering an error challenge, then OAUTHBEARER sends AQ== (one \\x01) and XOAUTH2 an empty line', () => {
    assert.equal(OAUTHBEARER_ERROR_ANSWER, 'AQ==')
    assert.deepEqual(Buffer.from(OAUTHBEARER_ERROR_ANSWER, 'base64'), Buffer.from([1]))
    assert.equal(XOAUTH2_ERROR_ANSWER, '')
  })
})

describe('parseSaslErrorChallenge', () => {
  const b64 = (value: string): string => Buffer.from(value).toString('base64')

  it("when given Google's example challenge, then it returns status, schemes and scope", () => {
    const challenge =
      'eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoiaHR0cHM6Ly9tYWlsLmdvb2dsZS5jb20vIn0K'
    assert.deepEqual(parseSaslErrorChallenge(challenge), {
      status: '401',
      schemes: 'bearer mac',
      scope: 'https://mail.google.com/',
    })
  })

  it('when given the whole line with its "+ " or "334 " prefix, then it still parses', () => {
    const challenge = b64('{"status":"401","schemes":"bearer","scope":"mail"}')
    const expected = { status: '401', schemes: 'bearer', scope: 'mail' }
    assert.deepEqual(parseSaslErrorChallenge(`+ ${challenge}`), expected)
    assert.deepEqual(parseSaslErrorChallenge(`334 ${challenge}\r\n`), expected)
  })

  it('when status is a number or fields are missing, then it returns strings and only what is there', () => {
    assert.deepEqual(parseSaslErrorChallenge(b64('{"status":400}')), { status: '400' })
    assert.deepEqual(parseSaslErrorChallenge(b64('{"status":"invalid_token","extra":{"a":1}}')), {
      status: 'invalid_token',
    })
  })

  it('when the challenge is empty, not base64, not JSON, or not an object, then it returns undefined', () => {
    const inputs = ['', '+', '+ ', 'not base64!', b64('hello'), b64('[1,2]'), b64('{broken'), b64('null')]
    for (const input of inputs) {
      assert.equal(parseSaslErrorChallenge(input), undefined, JSON.stringify(input))
    }
  })
})
