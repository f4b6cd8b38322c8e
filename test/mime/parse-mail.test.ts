import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { isAppError } from '../../src/shared/errors.ts'
import { parseMail } from '../../src/mail/mime/parse-mail.ts'
import { resolveCidPlaceholders } from '../../src/mail/mime/safe-html.ts'
import { sanitizeMailHtml } from '../../src/ingest/sanitize-html.ts'
import { expected, fixtureNames, loadFixture } from '../fixtures/mail/corpus.ts'
import { assertParsed } from './assert-parsed.ts'
import { mailWithAttachment } from './mail-builders.ts'

describe('parseMail on the fixture corpus', () => {
  for (const name of fixtureNames) {
    const want = expected.fixtures[name].parse
    if (want.throws) {
      it(`when ${name} is parsed, then it rejects with ${want.throws} saying "${want.reasonIncludes}"`, async () => {
        await assert.rejects(parseMail(loadFixture(name)), (err: unknown) => {
          assert.ok(isAppError(err, want.throws), `AppError ${want.throws}, got ${String(err)}`)
          assert.ok(err.message.includes(want.reasonIncludes ?? ''), err.message)
          return true
        })
      })
    } else {
      it(`when ${name} is parsed, then the result matches expected.json`, async () => {
        const mail = await parseMail(loadFixture(name))
        assertParsed(mail, want, name)
      })
    }
  }
})

describe('parseMail results', () => {
  it('when a mail carries a 3 MB attachment, then its bytes, size and sha256 are exact and it owns its buffer', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17)
    const mail = await parseMail(mailWithAttachment(data))
    assert.equal(mail.text?.trim(), 'Scans attached.')
    assert.equal(mail.attachments.length, 1)
    const [attachment] = mail.attachments
    assert.equal(attachment!.size, data.length)
    assert.ok(Buffer.from(attachment!.content).equals(data))
    assert.equal(attachment!.sha256, createHash('sha256').update(data).digest('hex'))
    assert.equal(attachment!.content.byteOffset, 0)
    assert.equal(attachment!.content.byteLength, attachment!.content.buffer.byteLength)
    assert.equal(mail.warnings.length, 0, mail.warnings.join('; '))
  })

  it('when the raw message lives in a SharedArrayBuffer, then it parses the same and is left unchanged', async () => {
    const raw = mailWithAttachment(randomBytes(200_000))
    const shared = Buffer.from(new SharedArrayBuffer(raw.length))
    raw.copy(shared)
    const [fromShared, fromPlain] = await Promise.all([parseMail(shared), parseMail(raw)])
    assert.deepEqual(fromShared.attachments.map((a) => a.sha256), fromPlain.attachments.map((a) => a.sha256))
    assert.equal(fromShared.text, fromPlain.text)
    assert.ok(shared.equals(raw))
  })

  it('when parsed with sanitizeHtml, then safeHtml is the sanitized body and its cid: placeholders resolve to attachment URLs', async () => {
    const raw = loadFixture('alternative-inline-image.eml')
    const mail = await parseMail(raw, { sanitizeHtml: true })
    const safe = mail.safeHtml
    assert.ok(safe, 'safeHtml is set')
    assert.match(safe.token, /^[0-9a-f]{24}$/)
    const index = mail.attachments.findIndex((a) => a.contentId === 'shot123@customer.example')
    assert.ok(index >= 0)
    const url = (i: number) => `/requests/7/attachments/${100 + i}`
    const direct = sanitizeMailHtml(mail.html!, { cidMap: { 'shot123@customer.example': url(index) }, allowRemoteImages: false })
    assert.equal(resolveCidPlaceholders(safe, url), direct.html)
    assert.equal(safe.blockedRemoteImages, direct.blockedRemoteImages)
    // Each parse draws its own token, so a sender cannot write a working placeholder.
    const again = await parseMail(raw, { sanitizeHtml: true })
    assert.notEqual(again.safeHtml!.token, safe.token)
    assert.equal((await parseMail(raw)).safeHtml, undefined)
  })

  it('when a sender writes a placeholder-looking URL into the HTML, then it is not turned into an attachment URL', async () => {
    const raw = Buffer.from(
      [
        'From: Eve <eve@attacker.example>',
        'Subject: fake placeholder',
        'MIME-Version: 1.0',
        'Content-Type: text/html; charset=utf-8',
        '',
        '<img src="/deskmail-cid-0123456789abcdef01234567-0.x"><a href="https://x.example/deskmail-cid-00-0.x">x</a>',
        '',
      ].join('\r\n'),
    )
    const mail = await parseMail(raw, { sanitizeHtml: true })
    const html = resolveCidPlaceholders(mail.safeHtml!, () => '/requests/1/attachments/1')
    assert.doesNotMatch(html, /attachments/)
  })

  it('when a parsed mail is structured-cloned, then nothing is lost (it can cross worker threads)', async () => {
    for (const name of ['alternative-inline-image.eml', 'dsn-bounce.eml', 'hostile-attachment-names.eml']) {
      const mail = await parseMail(loadFixture(name))
      const clone = structuredClone(mail)
      assert.deepEqual({ ...clone, attachments: [] }, { ...mail, attachments: [] })
      assert.deepEqual(
        clone.attachments.map((a) => ({ ...a, content: Buffer.from(a.content).toString('base64') })),
        mail.attachments.map((a) => ({ ...a, content: Buffer.from(a.content).toString('base64') })),
      )
    }
  })

  it('when a mail has attachments, then each attachment owns its whole ArrayBuffer (safe to transfer)', async () => {
    const mail = await parseMail(loadFixture('hostile-attachment-names.eml'))
    const buffers = new Set<ArrayBufferLike>()
    for (const attachment of mail.attachments) {
      assert.equal(attachment.content.byteOffset, 0)
      assert.equal(attachment.content.byteLength, attachment.content.buffer.byteLength)
      buffers.add(attachment.content.buffer)
    }
    assert.equal(buffers.size, mail.attachments.length)
  })

  it('when the headers are read, then names are lower-case and values decoded and unfolded', async () => {
    const mail = await parseMail(loadFixture('reply-references.eml'))
    assert.deepEqual(mail.headers['in-reply-to'], ['<req12.out1@desk.example.test>'])
    assert.equal(mail.headers['references']?.[0].includes('\n'), false)
    const html = await parseMail(loadFixture('html.eml'))
    assert.deepEqual(html.headers['subject'], ['Café machine leaks'])
  })

  it('when a header value is 1 MB, then the record keeps at most the configured length', async () => {
    const limits = { maxHeaderValueLength: 1000 }
    const mail = await parseMail(loadFixture('generated:huge-header'), { limits })
    assert.equal(mail.headers['x-huge']?.[0].length, 1000)
    const total = Object.entries(mail.headers).reduce((sum, [k, v]) => sum + k.length + v.join('').length, 0)
    assert.ok(total <= 256 * 1024, `header record is ${total} characters`)
  })

  it('when References lists thousands of ids, then the first and the most recent ones are kept', async () => {
    const mail = await parseMail(loadFixture('generated:many-references'))
    assert.equal(mail.references.length, 100)
    assert.equal(mail.references[0], 'ref-0@elsewhere.example')
    assert.equal(mail.references.at(-1), 'req12.out1@desk.example.test')
  })

  it('when a display name decodes to an address, then it stays a name (RFC 2047 section 5)', async () => {
    const raw = Buffer.from(
      'From: =?utf-8?Q?=22ceo=40bank=2Eexample=22_=3Cceo=40bank=2Eexample=3E?= <attacker@evil.example>\r\n' +
        'Subject: x\r\nMessage-ID: <a@b.example>\r\nDate: Tue, 14 May 2024 09:30:00 +0200\r\n\r\nbody\r\n',
    )
    const mail = await parseMail(raw)
    assert.equal(mail.from?.address, 'attacker@evil.example')
    assert.equal(mail.from?.name, '"ceo@bank.example" <ceo@bank.example>')
  })

  it('when the Date header cannot be parsed, then date is undefined (not "now") and a warning says so', async () => {
    const raw = Buffer.from('From: a@b.example\r\nMessage-ID: <d@b.example>\r\nDate: yesterday-ish\r\n\r\nx')
    const mail = await parseMail(raw)
    assert.equal(mail.date, undefined)
    assert.deepEqual(mail.warnings, ['the Date header cannot be parsed'])
  })

  it('when the message is larger than maxMessageBytes, then it rejects with mail_unparseable', async () => {
    const parsing = parseMail(loadFixture('plain.eml'), { limits: { maxMessageBytes: 100 } })
    await assert.rejects(parsing, (err: unknown) => {
      assert.ok(isAppError(err, 'mail_unparseable'))
      assert.match(err.message, /more than the limit of 100/)
      return true
    })
  })

  it('when parsing outlives timeoutMs, then it rejects with mail_unparseable instead of hanging', async () => {
    const parsing = parseMail(loadFixture('generated:deep-nesting-200'), { limits: { timeoutMs: 1 } })
    await assert.rejects(parsing, (err: unknown) => {
      assert.ok(isAppError(err, 'mail_unparseable'))
      assert.match(err.message, /longer than 1 ms/)
      return true
    })
  })

  it('when parts are limited to 100, then a 200-level nesting is refused with the reason', async () => {
    const parsing = parseMail(loadFixture('generated:deep-nesting-200'), { limits: { maxParts: 100 } })
    await assert.rejects(parsing, /more than 100 MIME parts/)
  })
})
