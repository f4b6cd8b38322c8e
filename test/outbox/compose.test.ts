import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { simpleParser } from 'mailparser'
import { composeMessage, newMessageId, validateAddress } from '../../src/outbox/compose.ts'
import { capReferences, maxReferences, replySubject, threadingHeaders } from '../../src/outbox/threading.ts'
import { renderAutoAckTemplate } from '../../src/outbox/auto-ack.ts'
import { isAppError } from '../../src/shared/errors.ts'
import { header, headersOf } from './support.ts'

const base = {
  from: { address: 'help@desk.example', name: 'Example Support' },
  to: [{ address: 'ann@customer.test', name: 'Ann Customer' }],
  subject: 'Re: [#12] Printer on fire',
  messageId: 'r12.m34.abcdef@desk.example',
  text: 'We are on it.\nRegards',
}

const refusedWith = (code: string) => (err: unknown) => isAppError(err, code)

describe('composing an outgoing message', () => {
  it('when a reply is composed, then it carries From with the display name, To, the subject, our Message-ID, In-Reply-To and References', async () => {
    const m = await composeMessage({ ...base, inReplyTo: 'cust-2@customer.test', references: ['cust-1@customer.test', 'r12.m20.aaaa@desk.example', 'cust-2@customer.test'] })
    assert.equal(header(m.raw, 'message-id'), '<r12.m34.abcdef@desk.example>')
    assert.equal(header(m.raw, 'in-reply-to'), '<cust-2@customer.test>')
    assert.equal(header(m.raw, 'references'), '<cust-1@customer.test> <r12.m20.aaaa@desk.example> <cust-2@customer.test>')
    assert.equal(header(m.raw, 'subject'), 'Re: [#12] Printer on fire')
    assert.equal(header(m.raw, 'from'), 'Example Support <help@desk.example>')
    assert.equal(header(m.raw, 'to'), 'Ann Customer <ann@customer.test>')
    assert.deepEqual(m.envelope, { from: 'help@desk.example', to: ['ann@customer.test'] })
    assert.equal(headersOf(m.raw).has('auto-submitted'), false, 'a person\'s reply is not automatic mail')
    const parsed = await simpleParser(m.raw)
    assert.equal(parsed.text?.trim(), 'We are on it.\nRegards')
  })

  it('when the message is automatic, then it is marked Auto-Submitted: auto-replied and X-Auto-Response-Suppress: All, without Precedence', async () => {
    const m = await composeMessage({ ...base, automatic: true })
    assert.equal(header(m.raw, 'auto-submitted'), 'auto-replied')
    assert.equal(header(m.raw, 'x-auto-response-suppress'), 'All')
    assert.equal(headersOf(m.raw).has('precedence'), false)
  })

  it('when a subject, display name, address or Message-ID contains CR or LF, then composing is refused with outbox_header_injection', async () => {
    await assert.rejects(composeMessage({ ...base, subject: 'Hello\r\nBcc: victim@example.test' }), refusedWith('outbox_header_injection'))
    await assert.rejects(composeMessage({ ...base, subject: 'Hello\nX-Evil: 1' }), refusedWith('outbox_header_injection'))
    await assert.rejects(composeMessage({ ...base, from: { address: 'help@desk.example', name: 'Support\rBcc: x@y.test' } }), refusedWith('outbox_header_injection'))
    await assert.rejects(composeMessage({ ...base, to: [{ address: 'ann@customer.test\r\nBcc: x@y.test' }] }), refusedWith('outbox_header_injection'))
    await assert.rejects(composeMessage({ ...base, to: [{ address: 'ann@customer.test', name: 'Ann\nBcc: x@y.test' }] }), refusedWith('outbox_header_injection'))
    await assert.rejects(composeMessage({ ...base, inReplyTo: 'a@b\r\nBcc: x@y.test' }), refusedWith('outbox_header_injection'))
    await assert.rejects(composeMessage({ ...base, references: ['a@b', 'c@d\nX: y'] }), refusedWith('outbox_header_injection'))
  })

  it('when an address is not a valid email address, then it is refused with outbox_invalid_address', async () => {
    for (const bad of ['not-an-address', 'ann@', '@customer.test', 'ann customer@customer.test', 'ann@customer.test, bob@customer.test', '<ann@customer.test>']) {
      await assert.rejects(composeMessage({ ...base, to: [{ address: bad }] }), refusedWith('outbox_invalid_address'), bad)
    }
    assert.throws(() => validateAddress('From', 'desk'), refusedWith('outbox_invalid_address'))
    assert.equal(validateAddress('To', ' ann@customer.test '), 'ann@customer.test')
    await assert.rejects(composeMessage({ ...base, to: [] }), refusedWith('outbox_no_recipient'))
  })

  it('when attachments have hostile names, then they go out with sanitized names and an encoded Content-Disposition', async () => {
    const m = await composeMessage({
      ...base,
      attachments: [
        { filename: '../../etc/passwd', contentType: 'text/plain', content: Buffer.from('root:x') },
        { filename: 'invoice\u202Efdp.exe', contentType: 'application/octet-stream', content: Buffer.from('MZ') },
        { filename: 'Résumé "final".pdf', contentType: 'application/pdf', content: Buffer.from('%PDF') },
      ],
    })
    assert.deepEqual(m.attachments.map((a) => a.filename), ['passwd', 'invoicefdp.exe', 'Résumé _final_.pdf'])
    const parsed = await simpleParser(m.raw)
    assert.deepEqual(parsed.attachments.map((a) => a.filename), ['passwd', 'invoicefdp.exe', 'Résumé _final_.pdf'])
    assert.deepEqual(parsed.attachments.map((a) => a.contentDisposition), ['attachment', 'attachment', 'attachment'])
    assert.equal(parsed.attachments[2]!.content.toString(), '%PDF')
    // Non-ASCII names use the RFC 2231 extended parameter (the `ext-value` form RFC 6266 uses for HTTP).
    assert.match(m.raw.toString(), /filename\*(0\*)?=utf-8''R%C3%A9sum%C3%A9/)
    await assert.rejects(
      composeMessage({ ...base, attachments: [{ filename: 'a.txt', contentType: 'text/plain\r\nBcc: x@y.test', content: Buffer.from('x') }] }),
      refusedWith('outbox_header_injection'),
    )
  })

  it('when our Message-ID is made, then it is r{number}.m{row}.{random}@domain and unique', () => {
    const a = newMessageId('desk.example', { requestNumber: 12, messageRowId: 34 })
    const b = newMessageId('desk.example', { requestNumber: 12, messageRowId: 34 })
    assert.match(a, /^r12\.m34\.[0-9a-f]{12}@desk\.example$/)
    assert.notEqual(a, b)
    assert.match(newMessageId('desk.example', { prefix: 'test' }), /^test\.[0-9a-z]+\.[0-9a-f]{12}@desk\.example$/)
  })
})

describe('threading headers of a reply', () => {
  it('when the customer wrote twice, then the reply answers the latest inbound mail and References lists the conversation with the parent last', () => {
    const t = threadingHeaders([
      { direction: 'inbound', messageIdHeader: 'c1@customer.test', referencesHeader: null },
      { direction: 'outbound', messageIdHeader: 'r1.m2.x@desk.example', referencesHeader: '<c1@customer.test>' },
      { direction: 'inbound', messageIdHeader: 'c2@customer.test', referencesHeader: '<c1@customer.test> <r1.m2.x@desk.example>' },
      { direction: 'outbound', messageIdHeader: null, referencesHeader: null },
    ])
    assert.equal(t.inReplyTo, 'c2@customer.test')
    assert.deepEqual(t.references, ['c1@customer.test', 'r1.m2.x@desk.example', 'c2@customer.test'])
  })

  it('when the conversation is long, then References keeps the first id and the newest ones, at most the cap', () => {
    const conversation = Array.from({ length: 60 }, (_, i) => ({ direction: 'inbound' as const, messageIdHeader: `m${i}@x.test`, referencesHeader: null }))
    const t = threadingHeaders(conversation)
    assert.equal(t.references.length, maxReferences)
    assert.equal(t.references[0], 'm0@x.test')
    assert.equal(t.references.at(-1), 'm59@x.test')
    assert.equal(t.inReplyTo, 'm59@x.test')
    assert.deepEqual(capReferences(['a', 'b', 'c', 'd'], 3), ['a', 'c', 'd'])
  })

  it('when there is no inbound message with a Message-ID, then there is no In-Reply-To', () => {
    const t = threadingHeaders([{ direction: 'inbound', messageIdHeader: null, referencesHeader: null }])
    assert.equal(t.inReplyTo, undefined)
    assert.deepEqual(t.references, [])
  })

  it('when the subject already has Re: and [#N], then the reply subject has each once', () => {
    assert.equal(replySubject(12, 'Printer on fire'), 'Re: [#12] Printer on fire')
    assert.equal(replySubject(12, 'Re: RE: [#12] Printer on fire'), 'Re: [#12] Printer on fire')
    assert.equal(replySubject(12, 'AW: Printer\r\non fire'), 'Re: [#12] Printer on fire')
    assert.equal((replySubject(7, '[#7] x').match(/\[#7\]/g) ?? []).length, 1)
  })

  it('when the acknowledgement template has placeholders, then {{number}} and {{subject}} are filled in', () => {
    assert.equal(renderAutoAckTemplate('Got #{{number}}: {{ subject }} {{other}}', { number: 5, subject: 'Printer' }), 'Got #5: Printer {{other}}')
  })
})
