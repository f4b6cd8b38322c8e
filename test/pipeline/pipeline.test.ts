import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import type { IngestFilter } from '../../src/ingest/context.ts'
import { ingestFilters } from '../../src/ingest/filters/index.ts'
import { parseMail } from '../../src/mail/mime/parse-mail.ts'
import type { ParserPool } from '../../src/mail/mime/parser-pool.ts'
import type { NewRequestEvent } from '../../src/ingest/pipeline.ts'
import { isAppError } from '../../src/shared/errors.ts'
import { dialects } from '../support/dialects.ts'
import { insertOutbound, mail, raw, startPipelineWorld } from './support.ts'
import type { PipelineWorld } from './support.ts'

async function count(world: PipelineWorld, table: 'requests' | 'messages' | 'inbound_mail' | 'contacts' | 'raw_mail' | 'attachments'): Promise<number> {
  const row = await world.storage.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
  return Number(row.n)
}

async function requestByNumber(world: PipelineWorld, n: number) {
  return world.storage.db.selectFrom('requests').selectAll().where('number', '=', n).executeTakeFirstOrThrow()
}

async function messagesOf(world: PipelineWorld, requestId: number) {
  return world.storage.db.selectFrom('messages').selectAll().where('request_id', '=', requestId).orderBy('id').execute()
}

/** A delivery status notification (RFC 3464) for the message `originalId`. */
function dsn(originalId: string, opts: { diagnostic?: string } = {}): Buffer {
  const boundary = 'dsn-boundary'
  return mail({
    from: 'Mail Delivery System <MAILER-DAEMON@mx.customer.example>',
    subject: 'Undelivered Mail Returned to Sender',
    headers: { 'Auto-Submitted': 'auto-replied' },
    contentType: `multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    body: [
      `--${boundary}`,
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Your message could not be delivered.',
      `--${boundary}`,
      'Content-Type: message/delivery-status',
      '',
      'Reporting-MTA: dns; mx.customer.example',
      '',
      'Final-Recipient: rfc822; gone@customer.example',
      'Action: failed',
      'Status: 5.1.1',
      `Diagnostic-Code: smtp; ${opts.diagnostic ?? '550 5.1.1 <gone@customer.example>: Recipient address rejected'}`,
      '',
      `--${boundary}`,
      'Content-Type: text/rfc822-headers',
      '',
      'From: support@example.test',
      'To: gone@customer.example',
      `Message-ID: <${originalId}>`,
      'Subject: Re: [#1] Question',
      '',
      `--${boundary}--`,
    ].join('\r\n'),
  })
}

for (const dialect of dialects) {
  describe(`ingest pipeline on ${dialect}`, () => {
    let world: PipelineWorld
    const events: NewRequestEvent[] = []
    before(async () => {
      world = await startPipelineWorld(dialect)
      world.pipeline.onNewRequest(async (_trx, event) => {
        events.push(event)
      })
    })
    after(async () => {
      await world.cleanup()
    })

    it('when a new mail arrives, then it becomes request #1 with its requester as a contact and an Email Audit row', async () => {
      const [out] = await world.pipeline.ingestBatch(world.server, [
        raw(mail({ from: 'Alice Example <Alice@Customer.Example>', subject: 'Printer broken', messageId: 'first@customer.example', body: 'The printer on floor 3 is broken.' }), 'imap:7:1'),
      ])
      assert.equal(out!.outcome, 'new_request')
      assert.equal(out!.requestNumber, 1)
      const request = await requestByNumber(world, 1)
      assert.equal(request.id, out!.requestId)
      assert.equal(request.subject, 'Printer broken')
      assert.equal(request.status, 'open')
      assert.equal(request.is_bulk, 0)
      assert.equal(request.server_id, world.server.id)
      const contact = await world.storage.db.selectFrom('contacts').selectAll().where('id', '=', request.requester_id!).executeTakeFirstOrThrow()
      assert.equal(contact.email, 'alice@customer.example')
      assert.equal(contact.name, 'Alice Example')
      const [message] = await messagesOf(world, request.id)
      assert.equal(message!.message_id_header, 'first@customer.example')
      assert.equal(message!.direction, 'inbound')
      assert.equal(message!.from_address, 'Alice@Customer.Example')
      assert.match(message!.text_body!, /floor 3 is broken/)
      assert.equal(message!.inbound_mail_id, out!.inboundMailId)
      const audit = await world.storage.db.selectFrom('inbound_mail').selectAll().where('id', '=', out!.inboundMailId).executeTakeFirstOrThrow()
      assert.equal(audit.outcome, 'new_request')
      assert.equal(audit.source_key, 'imap:7:1')
      assert.equal(audit.request_id, request.id)
      assert.equal(audit.message_id, message!.id)
      assert.equal(audit.message_id_header, 'first@customer.example')
      const stored = await world.storage.db.selectFrom('raw_mail').select(['content', 'hash']).where('hash', '=', audit.raw_hash).executeTakeFirstOrThrow()
      assert.equal(createHash('sha256').update(stored.content).digest('hex'), audit.raw_hash, 'the raw mail is kept byte for byte')
      const event = events.find((e) => e.requestId === request.id)!
      assert.equal(event.requestNumber, 1)
      assert.equal(event.suppressAutomaticMail, false)
      assert.deepEqual(event.requester, { address: 'Alice@Customer.Example', name: 'Alice Example' })
      assert.equal(event.inboundMessageId, 'first@customer.example')
    })

    it('when the customer replies with In-Reply-To, then the reply joins the same request and reopens it', async () => {
      const request = await requestByNumber(world, 1)
      await world.storage.db.updateTable('requests').set({ status: 'resolved' }).where('id', '=', request.id).execute()
      const [out] = await world.pipeline.ingestBatch(world.server, [
        raw(mail({ subject: 'Re: Printer broken', messageId: 'second@customer.example', headers: { 'In-Reply-To': '<first@customer.example>' } })),
      ])
      assert.equal(out!.outcome, 'reply')
      assert.equal(out!.requestId, request.id)
      assert.equal(out!.requestNumber, 1)
      const messages = await messagesOf(world, request.id)
      assert.equal(messages.length, 2)
      assert.equal(messages[1]!.in_reply_to, 'first@customer.example')
      assert.equal((await requestByNumber(world, 1)).status, 'open')
      assert.equal(await count(world, 'requests'), 1)
    })

    it('when a reply carries only [#N] in its subject, then it joins request N', async () => {
      const [out] = await world.pipeline.ingestBatch(world.server, [raw(mail({ subject: 'AW: [#1] Printer broken', messageId: 'third@customer.example' }))])
      assert.equal(out!.outcome, 'reply')
      assert.equal(out!.requestNumber, 1)
      assert.equal((await messagesOf(world, out!.requestId!)).length, 3)
    })

    it('when a reply answers a mail of the same batch, then both land in one new request', async () => {
      const before = await count(world, 'requests')
      const outs = await world.pipeline.ingestBatch(world.server, [
        raw(mail({ subject: 'VPN down', messageId: 'vpn-1@customer.example' })),
        raw(mail({ subject: 'Re: VPN down', messageId: 'vpn-2@customer.example', headers: { References: '<vpn-1@customer.example>' } })),
      ])
      assert.deepEqual(outs.map((o) => o.outcome), ['new_request', 'reply'])
      assert.equal(outs[1]!.requestId, outs[0]!.requestId)
      assert.equal(outs[1]!.requestNumber, outs[0]!.requestNumber)
      assert.equal(await count(world, 'requests'), before + 1)
    })

    it('when an out-of-office reply refers to a request, then it is attached, flagged, and starts nothing', async () => {
      const before = await count(world, 'requests')
      const [out] = await world.pipeline.ingestBatch(world.server, [
        raw(mail({ subject: 'Automatic reply: Printer broken', headers: { 'Auto-Submitted': 'auto-replied', 'In-Reply-To': '<first@customer.example>' } })),
      ])
      assert.equal(out!.outcome, 'reply')
      assert.equal(out!.requestNumber, 1)
      const messages = await messagesOf(world, out!.requestId!)
      assert.equal(messages.at(-1)!.flags, 'auto-reply')
      assert.equal(await count(world, 'requests'), before)
    })

    it('when an automatic reply matches no request, then it is only audited as ignored with the reason', async () => {
      const before = { requests: await count(world, 'requests'), messages: await count(world, 'messages') }
      const [out] = await world.pipeline.ingestBatch(world.server, [
        raw(mail({ subject: 'Out of office', headers: { 'X-Autoreply': 'yes' } })),
        raw(mail({ subject: 'Out of Office: back Monday', headers: { 'X-Auto-Response-Suppress': 'All' } })),
      ])
      assert.equal(out!.outcome, 'ignored')
      assert.match(out!.reason!, /automatic reply that matches no request: X-Autoreply/)
      assert.equal(await count(world, 'requests'), before.requests)
      assert.equal(await count(world, 'messages'), before.messages)
      const audit = await world.storage.db.selectFrom('inbound_mail').selectAll().where('id', '=', out!.inboundMailId).executeTakeFirstOrThrow()
      assert.equal(audit.outcome, 'ignored')
      assert.match(audit.outcome_reason!, /X-Autoreply/)
      assert.equal(audit.request_id, null)
    })

    it('when a bounce returns one of our messages, then it is attached to that request and our message is marked bounced with the diagnostic', async () => {
      const request = await requestByNumber(world, 1)
      const outbound = await insertOutbound(world.storage, request.id, 'r1.m99.abc@desk.example.test')
      const before = await count(world, 'requests')
      const [out] = await world.pipeline.ingestBatch(world.server, [raw(dsn('r1.m99.abc@desk.example.test'))])
      assert.equal(out!.outcome, 'reply')
      assert.equal(out!.requestId, request.id)
      const ours = await world.storage.db.selectFrom('messages').selectAll().where('id', '=', outbound).executeTakeFirstOrThrow()
      assert.equal(ours.delivery_status, 'bounced')
      assert.match(ours.delivery_error!, /550 5\.1\.1/)
      const attached = (await messagesOf(world, request.id)).at(-1)!
      assert.match(attached.flags!, /bounce/)
      assert.equal(await count(world, 'requests'), before)
      assert.equal(events.filter((e) => e.requestId === request.id).length, 1, 'no new-request event for a bounce')
    })

    it('when a bounce refers to nothing we know, then it is ignored with the reason', async () => {
      const before = await count(world, 'requests')
      const [out] = await world.pipeline.ingestBatch(world.server, [raw(dsn('unknown-original@elsewhere.example'))])
      assert.equal(out!.outcome, 'ignored')
      assert.match(out!.reason!, /bounce that matches no request/)
      assert.equal(await count(world, 'requests'), before)
    })

    it('when list mail arrives, then it is a request flagged bulk and its event suppresses automatic mail', async () => {
      const [out] = await world.pipeline.ingestBatch(world.server, [
        raw(mail({ subject: 'Weekly newsletter', headers: { 'List-Id': 'News <news.lists.example>', Precedence: 'list' } })),
      ])
      assert.equal(out!.outcome, 'new_request')
      const request = await world.storage.db.selectFrom('requests').selectAll().where('id', '=', out!.requestId!).executeTakeFirstOrThrow()
      assert.equal(request.is_bulk, 1)
      const event = events.find((e) => e.requestId === out!.requestId)!
      assert.equal(event.suppressAutomaticMail, true)
      assert.equal((await messagesOf(world, request.id))[0]!.flags, 'bulk')
    })

    it('when our own mail comes back, then it is ignored as a loop', async () => {
      const [fromUs, ourId] = await world.pipeline.ingestBatch(world.server, [
        raw(mail({ from: 'Support <SUPPORT@example.test>', subject: 'Re: [#1] Printer' })),
        raw(mail({ subject: 'Forwarded', messageId: 'r1.m5.xyz@desk.example.test' })),
      ])
      assert.equal(fromUs!.outcome, 'ignored')
      assert.match(fromUs!.reason!, /mail loop/)
      assert.equal(ourId!.outcome, 'ignored')
    })

    it('when the same sourceKey comes twice, then the second is a duplicate and nothing is created twice', async () => {
      const message = raw(mail({ subject: 'Only once' }), 'imap:7:500')
      const [first] = await world.pipeline.ingestBatch(world.server, [message])
      const counts = { requests: await count(world, 'requests'), audit: await count(world, 'inbound_mail'), messages: await count(world, 'messages') }
      const [again] = await world.pipeline.ingestBatch(world.server, [message])
      assert.equal(again!.outcome, 'duplicate')
      assert.equal(again!.inboundMailId, first!.inboundMailId)
      // The same bytes under another key (a resync after a UIDVALIDITY change), and a key twice in one batch.
      const [moved, dupA, dupB] = await world.pipeline.ingestBatch(world.server, [
        raw(message.raw, 'imap:8:1'),
        raw(mail({ subject: 'Twice in a batch' }), 'imap:7:501'),
        raw(mail({ subject: 'Twice in a batch, other bytes' }), 'imap:7:501'),
      ])
      assert.equal(moved!.outcome, 'duplicate')
      assert.equal(moved!.inboundMailId, first!.inboundMailId)
      assert.equal(dupA!.outcome, 'new_request')
      assert.equal(dupB!.outcome, 'duplicate')
      assert.equal(dupB!.inboundMailId, dupA!.inboundMailId)
      assert.equal(await count(world, 'requests'), counts.requests + 1)
      assert.equal(await count(world, 'inbound_mail'), counts.audit + 1)
      assert.equal(await count(world, 'messages'), counts.messages + 1)
    })

    it('when a hook throws, then the whole batch is rolled back and a retry writes it once', async () => {
      const counts = { requests: await count(world, 'requests'), audit: await count(world, 'inbound_mail'), raw: await count(world, 'raw_mail'), contacts: await count(world, 'contacts') }
      const batch = [raw(mail({ from: 'rollback@customer.example', subject: 'Rolled back 1' })), raw(mail({ subject: 'Rolled back 2' }))]
      await assert.rejects(
        world.pipeline.ingestBatch(world.server, batch, {
          async beforeCommit(trx) {
            assert.equal(Number((await trx.selectFrom('requests').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n), counts.requests + 2, 'the hook sees the batch')
            throw new Error('lease lost')
          },
        }),
        /lease lost/,
      )
      assert.equal(await count(world, 'requests'), counts.requests)
      assert.equal(await count(world, 'inbound_mail'), counts.audit)
      assert.equal(await count(world, 'raw_mail'), counts.raw)
      assert.equal(await count(world, 'contacts'), counts.contacts)
      let hookRan = false
      const retry = await world.pipeline.ingestBatch(world.server, batch, {
        async beforeCommit() {
          hookRan = true
        },
      })
      assert.ok(hookRan)
      assert.deepEqual(retry.map((o) => o.outcome), ['new_request', 'new_request'])
      // Numbers stay gap-free across the rollback.
      assert.equal(retry[1]!.requestNumber, retry[0]!.requestNumber! + 1)
      assert.equal(await count(world, 'requests'), counts.requests + 2)
    })

    it('when a filter throws on one message, then that message is quarantined and the rest of the batch goes on', async () => {
      const exploding: IngestFilter = {
        name: 'exploding',
        run(ctx) {
          if (ctx.mail.subject.includes('EXPLODE')) throw new Error('filter bug')
        },
      }
      const pipeline = world.another({ filters: [exploding, ...ingestFilters] })
      const outs = await pipeline.ingestBatch(world.server, [raw(mail({ subject: 'fine 1' })), raw(mail({ subject: 'EXPLODE' })), raw(mail({ subject: 'fine 2' }))])
      assert.deepEqual(outs.map((o) => o.outcome), ['new_request', 'quarantined', 'new_request'])
      assert.match(outs[1]!.reason!, /filter bug/)
      assert.equal(outs[2]!.requestNumber, outs[0]!.requestNumber! + 1, 'the quarantined message takes no number')
      const audit = await world.storage.db.selectFrom('inbound_mail').selectAll().where('id', '=', outs[1]!.inboundMailId).executeTakeFirstOrThrow()
      assert.equal(audit.outcome, 'quarantined')
      assert.equal(audit.subject, 'EXPLODE')
      assert.ok(world.logs.some((l) => l.includes('message quarantined')))
    })

    it('when a quarantined message is re-processed after the cause is fixed, then it becomes a request', async () => {
      // Quarantined by a pipeline whose parser allows fewer parts than this message has.
      const strict = world.another({ parserOptions: { size: 1, limits: { maxParts: 2 } } })
      const multipart = mail({
        subject: 'Three parts',
        contentType: 'multipart/mixed; boundary="b"',
        body: ['--b', 'Content-Type: text/plain', '', 'one', '--b', 'Content-Type: text/plain', '', 'two', '--b', 'Content-Type: text/plain', '', 'three', '--b--'].join('\r\n'),
      })
      const [quarantined] = await strict.ingestBatch(world.server, [raw(multipart)])
      assert.equal(quarantined!.outcome, 'quarantined')
      assert.match(quarantined!.reason!, /MIME parts/)
      const result = await world.pipeline.reprocess(quarantined!.inboundMailId)
      assert.equal(result.outcome, 'new_request')
      assert.equal(result.inboundMailId, quarantined!.inboundMailId)
      const audit = await world.storage.db.selectFrom('inbound_mail').selectAll().where('id', '=', quarantined!.inboundMailId).executeTakeFirstOrThrow()
      assert.equal(audit.outcome, 'new_request')
      assert.equal(audit.attempts, 2)
      assert.equal(audit.request_id, result.requestId)
      await assert.rejects(world.pipeline.reprocess(quarantined!.inboundMailId), (err) => isAppError(err, 'not_quarantined'))
      // And the raw is still recognised as already ingested.
      const [again] = await world.pipeline.ingestBatch(world.server, [raw(multipart)])
      assert.equal(again!.outcome, 'duplicate')
    })

    it('when a mail has HTML with an inline image, then the body is sanitized and cid: points at the stored attachment', async () => {
      const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex')
      const body = [
        '--rel',
        'Content-Type: text/html; charset=utf-8',
        '',
        '<p onclick="steal()">Hi</p><script>alert(1)</script><img src="cid:logo@customer.example"><img src="https://tracker.example/pixel.gif"><a href="javascript:alert(2)">x</a>',
        '--rel',
        'Content-Type: image/png; name="logo.png"',
        'Content-ID: <logo@customer.example>',
        'Content-Transfer-Encoding: base64',
        '',
        png.toString('base64'),
        '--rel',
        'Content-Type: application/pdf; name="../../etc/Quote\u202Efdp.exe.pdf"',
        'Content-Disposition: attachment; filename="../../etc/Quote.pdf"',
        'Content-Transfer-Encoding: base64',
        '',
        Buffer.from('%PDF-1.4 test').toString('base64'),
        '--rel--',
      ].join('\r\n')
      const [out] = await world.pipeline.ingestBatch(world.server, [raw(mail({ subject: 'Logo', contentType: 'multipart/related; boundary="rel"', body }))])
      assert.equal(out!.outcome, 'new_request')
      const [message] = await messagesOf(world, out!.requestId!)
      const attachments = await world.storage.db.selectFrom('attachments').selectAll().where('message_id', '=', message!.id).orderBy('id').execute()
      assert.equal(attachments.length, 2)
      const logo = attachments.find((a) => a.content_id === 'logo@customer.example')!
      assert.equal(logo.inline, 1)
      assert.deepEqual(Buffer.from(logo.content), png)
      const quote = attachments.find((a) => a.content_type === 'application/pdf')!
      assert.equal(quote.filename, 'Quote.pdf')
      assert.equal(quote.inline, 0)
      assert.ok(message!.html_body!.includes(`src="/requests/${out!.requestId}/attachments/${logo.id}"`), message!.html_body!)
      assert.doesNotMatch(message!.html_body!, /script|onclick|javascript:|tracker\.example|deskmail-cid/i)
      assert.equal(message!.remote_images, 1)
    })

    it('when the parser does not sanitize (a pool passed in), then the HTML is sanitized here with cid: images resolved the same way', async () => {
      const inProcess: ParserPool = {
        parse: (bytes) => parseMail(bytes),
        close: async () => {},
        stats: () => ({ workers: 0, busy: 0, queued: 0, replaced: 0 }),
      }
      const pipeline = world.another({ parser: inProcess })
      const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex')
      const body = [
        '--rel',
        'Content-Type: text/html; charset=utf-8',
        '',
        '<p onclick="steal()">Hi</p><img src="cid:mark@customer.example"><img src="https://tracker.example/p.gif">',
        '--rel',
        'Content-Type: image/png; name="mark.png"',
        'Content-ID: <mark@customer.example>',
        'Content-Transfer-Encoding: base64',
        '',
        png.toString('base64'),
        '--rel--',
      ].join('\r\n')
      const message = mail({ subject: 'Mark', contentType: 'multipart/related; boundary="rel"', body })
      const [out] = await pipeline.ingestBatch(world.server, [raw(message)])
      assert.equal(out!.outcome, 'new_request')
      const [stored] = await messagesOf(world, out!.requestId!)
      const [mark] = await world.storage.db
        .selectFrom('attachments')
        .selectAll()
        .where('message_id', '=', stored!.id)
        .execute()
      assert.ok(stored!.html_body!.includes(`src="/requests/${out!.requestId}/attachments/${mark!.id}"`), stored!.html_body!)
      assert.doesNotMatch(stored!.html_body!, /onclick|tracker\.example|deskmail-cid/i)
      assert.equal(stored!.remote_images, 1)
    })

    it('when 1,000 messages arrive in batches, then there are exactly 1,000 audit rows and 1,000 requests', async () => {
      const counts = { requests: await count(world, 'requests'), audit: await count(world, 'inbound_mail') }
      const all = Array.from({ length: 1000 }, (_, i) => raw(mail({ from: `c${i % 37}@bulk.example`, subject: `Load ${i}` }), `pop3:load-${i}`))
      const outs = []
      for (let i = 0; i < all.length; i += 200) outs.push(...(await world.pipeline.ingestBatch(world.server, all.slice(i, i + 200))))
      assert.equal(outs.filter((o) => o.outcome === 'new_request').length, 1000)
      assert.equal(await count(world, 'inbound_mail'), counts.audit + 1000)
      assert.equal(await count(world, 'requests'), counts.requests + 1000)
      const numbers = outs.map((o) => o.requestNumber!)
      assert.equal(new Set(numbers).size, 1000)
      assert.equal(Math.max(...numbers) - Math.min(...numbers), 999, 'consecutive numbers')
      const contacts = await world.storage.db.selectFrom('contacts').select('email').where('email', 'like', '%@bulk.example').execute()
      assert.equal(contacts.length, 37)
      // Replayed, all of them: nothing new.
      const replay = await world.pipeline.ingestBatch(world.server, all.slice(0, 300))
      assert.ok(replay.every((o) => o.outcome === 'duplicate'))
      assert.equal(await count(world, 'requests'), counts.requests + 1000)
    })

    it('when batches of one mailbox are handed over before the previous commits, then they commit in order and a failure stops the ones after it', async () => {
      const order: string[] = []
      const hook = (name: string, fail = false) => ({
        async beforeCommit() {
          order.push(name)
          if (fail) throw new Error(`${name} failed`)
        },
      })
      const a = world.pipeline.ingestBatch(world.server, [raw(mail({ subject: 'batch a' }))], hook('a'))
      const b = world.pipeline.ingestBatch(world.server, [raw(mail({ subject: 'batch b' }))], hook('b', true))
      const c = world.pipeline.ingestBatch(world.server, [raw(mail({ subject: 'batch c' }))], hook('c'))
      const results = await Promise.allSettled([a, b, c])
      assert.equal(results[0].status, 'fulfilled')
      assert.equal(results[1].status, 'rejected')
      assert.equal(results[2].status, 'rejected')
      assert.ok(isAppError((results[2] as PromiseRejectedResult).reason, 'ingest_batch_aborted'))
      assert.deepEqual(order, ['a', 'b'])
      // After the chain has settled, the caller's retry starts afresh.
      const [retry] = await world.pipeline.ingestBatch(world.server, [raw(mail({ subject: 'batch c again' }))])
      assert.equal(retry!.outcome, 'new_request')
    })

    it('when the metrics are read, then every outcome was counted', async () => {
      const text = await world.metrics.registry.metrics()
      for (const outcome of ['new_request', 'reply', 'ignored', 'quarantined', 'duplicate']) {
        assert.match(text, new RegExp(`deskmail_mail_ingested_total\\{outcome="${outcome}"\\} [1-9]`), outcome)
      }
    })
  })
}
