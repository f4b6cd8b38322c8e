import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatRequestSubject, subjectRequestNumber } from '../../src/ingest/filters/index.ts'
import { isAppError } from '../../src/shared/errors.ts'

describe('subject request token', () => {
  const found: Array<[string, number]> = [
    ['[#123] Printer', 123],
    ['Re: [#123] Printer', 123],
    ['AW: [#123]', 123],
    ['RE: AW: Fwd: [#7] x', 7],
    ['Automatic reply: [#42] x', 42],
    ['Printer broken [#5]', 5],
    ['[#0012] leading zeros', 12],
    ['[#abc] then [#9] real', 9],
    ['[#0] zero then [#3]', 3],
  ]
  for (const [subject, n] of found) {
    it(`when the subject is ${JSON.stringify(subject)}, then the request number is ${n}`, () => {
      assert.equal(subjectRequestNumber(subject), n)
    })
  }

  const none = [
    '[#123abc] x',
    '[#] x',
    '[# 12] x',
    '[#12 ] x',
    '#123 x',
    '[123] x',
    '[#1234567890] too long',
    '[#0]',
    '',
  ]
  for (const subject of none) {
    it(`when the subject is ${JSON.stringify(subject)}, then there is no request number`, () => {
      assert.equal(subjectRequestNumber(subject), undefined)
    })
  }

  it('when a subject is formatted, then [#N] is added once, in front', () => {
    assert.equal(formatRequestSubject(12, 'Printer broken'), '[#12] Printer broken')
    assert.equal(formatRequestSubject(12, 'Re: [#12] Printer broken'), 'Re: [#12] Printer broken')
    assert.equal(formatRequestSubject(12, formatRequestSubject(12, 'x')), '[#12] x')
    assert.equal(formatRequestSubject(13, 'Re: [#12] Printer'), '[#13] Re: [#12] Printer')
    assert.equal(subjectRequestNumber(formatRequestSubject(13, 'Re: [#12] Printer')), 13)
    assert.equal(formatRequestSubject(5, ''), '[#5]')
  })

  it('when a subject holds line breaks or control characters, then the result is a safe single line', () => {
    const subject = formatRequestSubject(7, 'Hello\r\nBcc: victim@example.com\u0000 there')
    assert.equal(subject, '[#7] Hello Bcc: victim@example.com there')
    assert.doesNotMatch(subject, /[\r\n\u0000]/)
  })

  it('when the request number is not a positive integer, then formatting refuses it', () => {
    for (const n of [0, -1, 1.5, Number.NaN, 1e10]) {
      assert.throws(
        () => formatRequestSubject(n, 'x'),
        (err: unknown) => isAppError(err, 'invalid_request_number'),
      )
    }
  })
})
