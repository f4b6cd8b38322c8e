import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  formatMessageId,
  messageIdDomain,
  normalizeMessageId,
  parseMessageIdList,
} from '../../src/mail/mime/message-id.ts'

describe('Message-ID helpers', () => {
  const valid: Array<[string, string]> = [
    ['<abc@example.com>', 'abc@example.com'],
    ['  <abc@example.com>  ', 'abc@example.com'],
    ['abc@example.com', 'abc@example.com'],
    ['<abc@example.com> (comment)', 'abc@example.com'],
    ['< abc@example.com >', 'abc@example.com'],
    ['<CAFoo+bar=baz@mail.gmail.com>', 'CAFoo+bar=baz@mail.gmail.com'],
  ]
  for (const [input, id] of valid) {
    it(`when the value is ${JSON.stringify(input)}, then the id is ${JSON.stringify(id)}`, () => {
      assert.equal(normalizeMessageId(input), id)
    })
  }

  const garbage = [
    '',
    '<>',
    'not an id',
    '<no-at-sign>',
    '<a@b@c>',
    '<a b@c>',
    '<@x.example>',
    '<a@>',
    'a\u0000@b',
  ]
  for (const input of garbage) {
    it(`when the value is ${JSON.stringify(input)}, then there is no id`, () => {
      assert.equal(normalizeMessageId(input), undefined)
    })
  }

  it('when an id is longer than 250 characters, then it is garbage', () => {
    assert.equal(normalizeMessageId(`<${'a'.repeat(250)}@b>`), undefined)
    assert.equal(normalizeMessageId(`<${'a'.repeat(200)}@b>`), `${'a'.repeat(200)}@b`)
  })

  it('when a References value is parsed, then ids come in order, once, garbage skipped', () => {
    assert.deepEqual(parseMessageIdList('<a@x> <b@x>\r\n <a@x> <junk> <c@x>'), ['a@x', 'b@x', 'c@x'])
    assert.deepEqual(parseMessageIdList('a@x, b@x'), ['a@x', 'b@x'])
    assert.deepEqual(parseMessageIdList('Your message of Monday <a@x>'), ['a@x'])
    assert.deepEqual(parseMessageIdList(undefined), [])
  })

  it('when an id is formatted or its domain asked, then brackets are added and the domain lower-cased', () => {
    assert.equal(formatMessageId('a@x'), '<a@x>')
    assert.equal(messageIdDomain('req.1@Desk.Example'), 'desk.example')
    assert.equal(messageIdDomain('no-domain'), '')
  })
})
