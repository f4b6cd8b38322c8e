import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { SecretBox, parseKeyring } from '../../src/shared/secret-box.ts'

const key = () => crypto.randomBytes(32).toString('base64')

describe('secret box', () => {
  it('when a value is sealed, then it opens with the same row binding and hides the plaintext', () => {
    const box = new SecretBox(parseKeyring(key()))
    const sealed = box.seal('ya29.secret-access-token', 'credentials:1:access_token')
    assert.ok(!sealed.includes('ya29'))
    assert.match(sealed, /^dm1\.1\./)
    assert.equal(box.open(sealed, 'credentials:1:access_token'), 'ya29.secret-access-token')
  })

  it('when a sealed value is moved to another row, then it does not open', () => {
    const box = new SecretBox(parseKeyring(key()))
    const sealed = box.seal('s3cret', 'credentials:1:refresh_token')
    assert.throws(() => box.open(sealed, 'credentials:2:refresh_token'), { code: 'secret_corrupt' })
  })

  it('when the ciphertext is altered, then it does not open', () => {
    const box = new SecretBox(parseKeyring(key()))
    const sealed = box.seal('s3cret', 'a')
    const parts = sealed.split('.')
    const body = Buffer.from(parts[3]!, 'base64url')
    body[body.length - 1]! ^= 1
    parts[3] = body.toString('base64url')
    assert.throws(() => box.open(parts.join('.'), 'a'), { code: 'secret_corrupt' })
  })

  it('when the master key rotates, then old values still open and new ones use the new version', () => {
    const k1 = key()
    const k2 = key()
    const old = new SecretBox(parseKeyring(k1)).seal('old', 'x')
    const rotated = new SecretBox(parseKeyring(`2:${k2},1:${k1}`))
    assert.equal(rotated.open(old, 'x'), 'old')
    assert.match(rotated.seal('new', 'x'), /^dm1\.2\./)
    assert.throws(() => new SecretBox(parseKeyring(`2:${k2}`)).open(old, 'x'), { code: 'secret_key_missing' })
    assert.throws(() => new SecretBox(parseKeyring(k2)).open(old, 'x'), { code: 'secret_corrupt' })
  })

  it('when the key is malformed, then parsing names the variable', () => {
    for (const bad of ['', 'short', 'Zm9v', `1:${key()},1:${key()}`]) {
      assert.throws(() => parseKeyring(bad), (err: any) => err.code === 'secret_key_invalid' && /DESKMAIL_SECRET_KEY/.test(err.message))
    }
  })
})
