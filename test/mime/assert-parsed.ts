import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { ParsedMail } from '../../src/mail/mime/types.ts'
import type { ParseExpectation } from '../fixtures/mail/corpus.ts'

/** Asserts everything a fixture's `parse` section says about a parsed mail. */
export function assertParsed(mail: ParsedMail, want: ParseExpectation, name: string): void {
  if (want.messageId !== undefined) {
    assert.equal(mail.messageId, want.messageId ?? undefined, `${name}: messageId`)
  }
  if (want.subject !== undefined) assert.equal(mail.subject, want.subject, `${name}: subject`)
  if (want.from !== undefined) assert.deepEqual(mail.from, want.from, `${name}: from`)
  if (want.to !== undefined) assert.deepEqual(mail.to.map((a) => a.address), want.to, `${name}: to`)
  if (want.date !== undefined) assert.equal(mail.date, want.date, `${name}: date`)
  if (want.inReplyTo !== undefined) assert.deepEqual(mail.inReplyTo, want.inReplyTo, `${name}: inReplyTo`)
  if (want.references !== undefined) assert.deepEqual(mail.references, want.references, `${name}: references`)
  for (const text of want.textIncludes ?? []) {
    assert.ok(mail.text?.includes(text), `${name}: text has ${JSON.stringify(text)}`)
  }
  if (want.html === null) assert.equal(mail.html, undefined, `${name}: no html`)
  for (const html of want.htmlIncludes ?? []) {
    assert.ok(mail.html?.includes(html), `${name}: html has ${JSON.stringify(html)}`)
  }
  if (want.report !== undefined) assert.deepEqual(mail.report, want.report ?? undefined, `${name}: report`)
  if (want.attachments !== undefined) {
    assert.equal(mail.attachments.length, want.attachments.length, `${name}: number of attachments`)
    want.attachments.forEach((a, i) => {
      const got = mail.attachments[i]
      const label = `${name}: attachment ${i}`
      if (a.filename !== undefined) assert.equal(got.filename, a.filename, `${label} filename`)
      if (a.filenameLength !== undefined) {
        assert.equal(Buffer.byteLength(got.filename), a.filenameLength, `${label} name length`)
      }
      if (a.filenameEndsWith !== undefined) {
        assert.ok(got.filename.endsWith(a.filenameEndsWith), `${label} name ending`)
      }
      assert.equal(got.contentType, a.contentType, `${label} contentType`)
      assert.equal(got.inline, a.inline, `${label} inline`)
      assert.equal(got.contentId, a.contentId, `${label} contentId`)
      if (a.size !== undefined) assert.equal(got.size, a.size, `${label} size`)
      assert.equal(got.size, got.content.byteLength, `${label} size matches content`)
      assert.equal(got.sha256, createHash('sha256').update(got.content).digest('hex'), `${label} sha256`)
      if (a.startsWith !== undefined) {
        const start = Buffer.from(got.content).subarray(0, a.startsWith.length).toString()
        assert.equal(start, a.startsWith, `${label} content`)
      }
    })
  }
  if (want.warnings !== undefined) {
    const unmatched = [...mail.warnings]
    for (const expectedWarning of want.warnings) {
      const index = unmatched.findIndex((w) => w.includes(expectedWarning))
      const quoted = JSON.stringify(expectedWarning)
      assert.ok(index >= 0, `${name}: a warning containing ${quoted} in ${JSON.stringify(mail.warnings)}`)
      unmatched.splice(index, 1)
    }
    assert.deepEqual(unmatched, [], `${name}: no other warnings`)
  }
}
