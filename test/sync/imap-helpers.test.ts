import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { batchesOf, uidSet } from '../../src/mailboxes/sync/imap-sync.ts'
import { BATCH_BYTES, BATCH_MESSAGES } from '../../src/mailboxes/sync/session.ts'
import { pop3AuthStyle } from '../../src/mailboxes/sync/pop3-sync.ts'

describe('IMAP sync helpers', () => {
  it('when UIDs have gaps, then the UID set names exactly them in ranges', () => {
    assert.equal(uidSet([1]), '1')
    assert.equal(uidSet([3, 4, 5, 7, 9, 10]), '3:5,7,9:10')
  })

  it('when many or large messages are listed, then batches respect the message and byte limits', () => {
    const many = Array.from({ length: BATCH_MESSAGES * 2 + 1 }, (_, i) => ({ uid: i + 1, size: 10 }))
    assert.deepEqual(batchesOf(many).map((b) => b.length), [BATCH_MESSAGES, BATCH_MESSAGES, 1])
    const big = [{ uid: 1, size: BATCH_BYTES * 2 }, { uid: 2, size: 10 }, { uid: 3, size: BATCH_BYTES - 5 }]
    assert.deepEqual(batchesOf(big).map((b) => b.map((m) => m.uid)), [[1], [2], [3]])
    assert.deepEqual(batchesOf([]), [])
  })

  it('when the provider is Microsoft, then POP3 XOAUTH2 uses the two-step form', () => {
    assert.equal(pop3AuthStyle('microsoft365'), 'two-step')
    assert.equal(pop3AuthStyle('outlook_legacy'), 'two-step')
    assert.equal(pop3AuthStyle('gmail'), 'initial-response')
    assert.equal(pop3AuthStyle(undefined), 'initial-response')
  })
})
