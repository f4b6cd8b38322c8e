import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { maxAttachmentNameBytes, sanitizeAttachmentName } from '../../src/ingest/attachment-names.ts'

describe('sanitizeAttachmentName', () => {
  const cases: Array<[string | undefined, string]> = [
    ['report.pdf', 'report.pdf'],
    ['../../etc/passwd', 'passwd'],
    ['..\\..\\Windows\\win.ini', 'win.ini'],
    ['C:\\Users\\me\\file.txt', 'file.txt'],
    ['/absolute/path/', 'path'],
    ['evil.pdf\u0000.exe', 'evil.pdf.exe'],
    ['tab\tand\nnewline.txt', 'tabandnewline.txt'],
    ['invoice\u202Efdp.exe', 'invoicefdp.exe'],
    ['.htaccess', 'htaccess'],
    ['...', 'attachment'],
    ['..', 'attachment'],
    ['', 'attachment'],
    [undefined, 'attachment'],
    ['   ', 'attachment'],
    ['CON', '_CON'],
    ['con.txt', '_con.txt'],
    ['LPT1.tar.gz', '_LPT1.tar.gz'],
    ['com¹.txt', '_com¹.txt'],
    ['console.txt', 'console.txt'],
    ['name.', 'name'],
    ['a<b>c:d"e|f?g*h.txt', 'a_b_c_d_e_f_g_h.txt'],
    ['  spaced   out  .doc', 'spaced out .doc'],
    ['Grüße.txt', 'Grüße.txt'],
    ['Gru\u0308ße.txt', 'Grüße.txt'],
  ]
  for (const [input, output] of cases) {
    it(`when the name is ${JSON.stringify(input)}, then it becomes ${JSON.stringify(output)}`, () => {
      assert.equal(sanitizeAttachmentName(input), output)
    })
  }

  it('when a name is too long, then it is cut to the byte limit and keeps its extension', () => {
    const name = sanitizeAttachmentName(`${'ä'.repeat(300)}.docx`)
    assert.ok(Buffer.byteLength(name) <= maxAttachmentNameBytes)
    assert.ok(name.endsWith('.docx'))
    assert.ok(name.startsWith('ää'))
    const noExtension = sanitizeAttachmentName('x'.repeat(1000))
    assert.equal(Buffer.byteLength(noExtension), maxAttachmentNameBytes)
  })

  it('when a long name ends in a very long "extension", then it is cut as a whole', () => {
    const name = sanitizeAttachmentName(`a.${'b'.repeat(400)}`)
    assert.equal(Buffer.byteLength(name), maxAttachmentNameBytes)
  })

  it('when a fallback is given and nothing is left, then the cleaned fallback is used', () => {
    assert.equal(sanitizeAttachmentName('../', 'part-3.bin'), 'part-3.bin')
    assert.equal(sanitizeAttachmentName(undefined, '../x.txt'), 'x.txt')
    assert.equal(sanitizeAttachmentName(undefined, ''), 'attachment')
  })

  it('when an emoji sits at the cut, then no surrogate half is left behind', () => {
    const name = sanitizeAttachmentName(`${'😀'.repeat(100)}.png`)
    assert.ok(Buffer.byteLength(name) <= maxAttachmentNameBytes)
    assert.equal(name, name.normalize('NFC'))
    assert.doesNotMatch(name, /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/)
  })
})
