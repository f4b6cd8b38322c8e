import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, describe, it } from 'node:test'
import { parseMail } from '../../src/mail/mime/parse-mail.ts'
import { createParserPool } from '../../src/mail/mime/parser-pool.ts'
import type { ParserPool } from '../../src/mail/mime/parser-pool.ts'
import { isAppError } from '../../src/shared/errors.ts'
import { expected, fixtureNames, loadFixture } from '../fixtures/mail/corpus.ts'
import { assertParsed } from './assert-parsed.ts'
import { mailWithAttachment } from './mail-builders.ts'

const misbehavingWorker = new URL('./misbehaving-parser-worker.ts', import.meta.url)

function testMail(behaviour: string | undefined, n: number): Buffer {
  return Buffer.from(
    [
      ...(behaviour ? [`X-Test-Behaviour: ${behaviour}`] : []),
      `From: customer${n}@customer.example`,
      'To: support@example.test',
      `Subject: message ${n}`,
      `Message-ID: <pool-${n}@customer.example>`,
      'Date: Tue, 14 May 2024 09:30:00 +0200',
      '',
      `body ${n}`,
      '',
    ].join('\r\n'),
  )
}

function isUnparseable(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(isAppError(err, 'mail_unparseable'), `mail_unparseable, got ${String(err)}`)
    assert.match(err.message, pattern)
    return true
  }
}

const pools: ParserPool[] = []
function pool(options: Parameters<typeof createParserPool>[0]): ParserPool {
  const created = createParserPool(options)
  pools.push(created)
  return created
}
after(async () => {
  await Promise.all(pools.map((p) => p.close()))
})

describe('parser pool', () => {
  it('when every fixture is parsed through the pool, then the results match expected.json and parseMail', async () => {
    const parsers = pool({ size: 2 })
    await Promise.all(
      fixtureNames.map(async (name) => {
        const want = expected.fixtures[name].parse
        const raw = loadFixture(name)
        if (want.throws) {
          await assert.rejects(parsers.parse(raw), (err: unknown) => isAppError(err, want.throws))
          return
        }
        const [viaPool, direct] = await Promise.all([parsers.parse(raw), parseMail(raw)])
        assertParsed(viaPool, want, name)
        assert.deepEqual(viaPool.warnings, direct.warnings, `${name}: same warnings`)
        assert.deepEqual(
          viaPool.attachments.map((a) => a.sha256),
          direct.attachments.map((a) => a.sha256),
        )
      }),
    )
    assert.equal(parsers.stats().replaced, 0, 'unparseable mail does not cost a worker')
  })

  it('when a message makes its worker exit, then only that message rejects and the pool carries on', async () => {
    const parsers = pool({ size: 1, workerUrl: misbehavingWorker })
    const results = await Promise.allSettled([
      parsers.parse(testMail(undefined, 1)),
      parsers.parse(testMail('exit', 2)),
      parsers.parse(testMail(undefined, 3)),
      parsers.parse(testMail(undefined, 4)),
    ])
    assert.equal(results[0].status, 'fulfilled')
    assert.equal(results[1].status, 'rejected')
    isUnparseable(/crashed/)((results[1] as PromiseRejectedResult).reason)
    const parsed = results.filter((r) => r.status === 'fulfilled')
    assert.deepEqual(
      parsed.map((r) => r.value.subject),
      ['message 1', 'message 3', 'message 4'],
    )
    assert.equal(parsers.stats().replaced, 1)
  })

  it('when hundreds of messages are queued and one crashes its worker, then only that one rejects and every other gets its own result', async () => {
    const parsers = pool({ size: 1, workerUrl: misbehavingWorker })
    const results = await Promise.allSettled(
      Array.from({ length: 300 }, (_, i) => parsers.parse(testMail(i === 150 ? 'exit' : undefined, i))),
    )
    results.forEach((result, i) => {
      if (i === 150) {
        assert.equal(result.status, 'rejected')
        isUnparseable(/crashed/)((result as PromiseRejectedResult).reason)
      } else {
        assert.equal(result.status, 'fulfilled', `message ${i}`)
        assert.equal((result as PromiseFulfilledResult<{ subject: string }>).value.subject, `message ${i}`)
      }
    })
    assert.equal(parsers.stats().replaced, 1)
  })

  it('when the raw message is in a SharedArrayBuffer, then the worker reads it in place and the bytes stay as they were', async () => {
    const parsers = pool({ size: 1 })
    const data = randomBytes(2 * 1024 * 1024)
    const raw = mailWithAttachment(data)
    const shared = Buffer.from(new SharedArrayBuffer(raw.length))
    raw.copy(shared)
    const mail = await parsers.parse(shared, { transfer: true })
    assert.equal(mail.attachments[0]!.sha256, createHash('sha256').update(data).digest('hex'))
    assert.ok(Buffer.from(mail.attachments[0]!.content).equals(data))
    assert.equal(shared.byteLength, raw.length, 'shared memory is never detached')
    assert.ok(shared.equals(raw))
  })

  it('when sanitizeHtml is asked for, then the worker returns the sanitized body with the raw one', async () => {
    const parsers = pool({ size: 1 })
    const raw = loadFixture('alternative-inline-image.eml')
    const [sanitized, plain] = await Promise.all([parsers.parse(raw, { sanitizeHtml: true }), parsers.parse(raw)])
    assert.ok(sanitized.safeHtml)
    assert.match(sanitized.safeHtml.html, /^<p>See the screenshot below.<\/p><img alt="screenshot" src="\/deskmail-cid-[0-9a-f]{24}-0\.x" \/>/)
    assert.equal(sanitized.html, plain.html)
    assert.equal(plain.safeHtml, undefined)
  })

  it('when a message throws an uncaught error in its worker, then that message rejects with the error', async () => {
    const parsers = pool({ size: 2, workerUrl: misbehavingWorker })
    const parsing = parsers.parse(testMail('uncaught', 1))
    await assert.rejects(parsing, isUnparseable(/crashed on this message: boom/))
    assert.equal((await parsers.parse(testMail(undefined, 2))).subject, 'message 2')
  })

  it('when a message hangs its worker, then it rejects after the timeout and the message behind it is still parsed', async () => {
    const parsers = pool({ size: 1, workerUrl: misbehavingWorker, timeoutMs: 1_000 })
    const hanging = parsers.parse(testMail('hang', 1))
    const behind = parsers.parse(testMail(undefined, 2))
    await assert.rejects(hanging, isUnparseable(/longer than 1000 ms/))
    assert.equal((await behind).subject, 'message 2')
    assert.equal(parsers.stats().replaced, 1)
  })

  it('when a message exhausts its worker heap, then it rejects as out of memory and the pool carries on', async () => {
    const parsers = pool({ size: 1, workerUrl: misbehavingWorker, maxHeapMb: 48 })
    await assert.rejects(parsers.parse(testMail('oom', 1)), isUnparseable(/out of memory/))
    assert.equal((await parsers.parse(testMail(undefined, 2))).subject, 'message 2')
  })

  it('when transfer is asked for, then the caller buffer is moved; by default it stays usable', async () => {
    const parsers = pool({ size: 1 })
    const kept = testMail(undefined, 1)
    const copy = Buffer.from(kept)
    await parsers.parse(kept)
    assert.deepEqual(kept, copy)
    const moved = new Uint8Array(copy)
    const mail = await parsers.parse(moved, { transfer: true })
    assert.equal(mail.subject, 'message 1')
    assert.equal(moved.byteLength, 0, 'detached after transfer')
  })

  it('when the pool is closed, then waiting and later parses reject with parser_pool_closed', async () => {
    const parsers = createParserPool({ size: 1, workerUrl: misbehavingWorker, timeoutMs: 10_000 })
    const pending = Promise.allSettled([
      parsers.parse(testMail('hang', 1)),
      parsers.parse(testMail(undefined, 2)),
    ])
    await new Promise((resolve) => setTimeout(resolve, 200))
    await parsers.close()
    const afterClose = await Promise.allSettled([parsers.parse(testMail(undefined, 3))])
    const outcomes = [...(await pending), ...afterClose]
    for (const outcome of outcomes) {
      assert.equal(outcome.status, 'rejected')
      const err = (outcome as PromiseRejectedResult).reason
      assert.ok(isAppError(err, 'parser_pool_closed') && err.transient, String(err))
    }
  })

  it('when workers cannot start, then parses reject with a transient parser_unavailable', async () => {
    const parsers = pool({ size: 1, workerUrl: new URL('./broken-parser-worker.ts', import.meta.url) })
    await assert.rejects(parsers.parse(testMail(undefined, 1)), (err: unknown) => {
      assert.ok(isAppError(err, 'parser_unavailable'), String(err))
      assert.equal(err.transient, true)
      return true
    })
    const again = parsers.parse(testMail(undefined, 2))
    await assert.rejects(again, (err: unknown) => isAppError(err, 'parser_unavailable'))
  })
})
