import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  parseDeliveryStatus,
  quotedOriginalMessageId,
  returnedMessageId,
} from '../../src/mail/mime/delivery-report.ts'
import {
  decodeRawHeaderBytes,
  decodeWindows1252,
  splitHeaderLine,
} from '../../src/mail/mime/header-values.ts'

describe('delivery status (RFC 3464)', () => {
  it('when the status has a per-message block and recipients, then the first recipient is read', () => {
    const status = [
      'Reporting-MTA: dns; mx.example',
      '',
      'Final-Recipient: rfc822; a@example.com',
      'Action: delayed',
      'Status: 4.4.1 (connection timed out)',
      'Diagnostic-Code: smtp; 421 try',
      '  again later',
      '',
      'Final-Recipient: rfc822; b@example.com',
      'Action: failed',
      'Status: 5.1.1',
    ].join('\r\n')
    assert.deepEqual(parseDeliveryStatus(status), {
      originalRecipient: 'a@example.com',
      action: 'delayed',
      status: '4.4.1',
      diagnostic: '421 try  again later',
    })
  })

  it('when everything is in one block, then the fields are still found', () => {
    const status = 'Final-Recipient: rfc822;x@example.com\nAction: FAILED\nStatus: 5.2.2'
    assert.deepEqual(parseDeliveryStatus(status), {
      originalRecipient: 'x@example.com',
      action: 'failed',
      status: '5.2.2',
      diagnostic: undefined,
    })
  })

  it('when fields hold garbage, then they are left out', () => {
    assert.deepEqual(parseDeliveryStatus('x\n\nAction: <script>\nStatus: bad'), {
      originalRecipient: undefined,
      action: undefined,
      status: undefined,
      diagnostic: undefined,
    })
  })

  it('when the returned original is read, then only its header block counts', () => {
    const original = Buffer.from('From: a@b\r\nMessage-ID:\r\n <orig@desk.example>\r\n\r\nMessage-ID: <x@y>')
    assert.equal(returnedMessageId(original), 'orig@desk.example')
    assert.equal(returnedMessageId(Buffer.from('From: a@b\r\n\r\nMessage-ID: <body@x>')), undefined)
  })

  it('when a non-RFC 3464 bounce quotes the original, then its Message-ID line is found', () => {
    assert.equal(quotedOriginalMessageId('text\n> Message-Id: <q@desk.example>\n'), 'q@desk.example')
    assert.equal(quotedOriginalMessageId('no id here'), undefined)
    assert.equal(quotedOriginalMessageId(undefined), undefined)
  })
})

describe('header values', () => {
  it('when a header line is split, then it is unfolded and has no line break left', () => {
    assert.deepEqual(splitHeaderLine('Subject: a\r\n b\r\n\tc'), { name: 'subject', value: 'a b\tc' })
    assert.deepEqual(splitHeaderLine('X-Odd:\rvalue\n'), { name: 'x-odd', value: 'value' })
  })

  it('when raw header bytes are not UTF-8, then they are read as windows-1252', () => {
    assert.deepEqual(decodeRawHeaderBytes('caf\xc3\xa9'), { value: 'café', eightBit: 'utf-8' })
    assert.deepEqual(decodeRawHeaderBytes('caf\xe9 \x80\x93x\x94'), {
      value: 'café €“x”',
      eightBit: 'windows-1252',
    })
    assert.deepEqual(decodeRawHeaderBytes('plain'), { value: 'plain' })
    assert.equal(decodeWindows1252(Uint8Array.from([0x80, 0x9f, 0xff])), '€Ÿÿ')
  })
})
