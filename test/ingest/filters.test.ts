import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createContext, ingestDecision } from '../../src/ingest/context.ts'
import type { IngestContext, IngestFilter } from '../../src/ingest/context.ts'
import { ingestFilters, runIngestFilters } from '../../src/ingest/filters/index.ts'
import { parseMail } from '../../src/mail/mime/parse-mail.ts'
import type { ParsedMail } from '../../src/mail/mime/types.ts'
import { expected, fakeLookups, fixtureNames, loadFixture } from '../fixtures/mail/corpus.ts'

async function ingest(raw: Buffer | ParsedMail): Promise<IngestContext> {
  const mail = Buffer.isBuffer(raw) ? await parseMail(raw) : raw
  return runIngestFilters(createContext({ mail, mailbox: expected.mailbox, lookups: fakeLookups() }))
}

function mail(headers: string, body = 'body'): Buffer {
  const head = headers.trim().split('\n').join('\r\n')
  return Buffer.from(`${head}\r\nDate: Tue, 14 May 2024 09:30:00 +0200\r\n\r\n${body}\r\n`)
}

describe('ingest filters on the fixture corpus', () => {
  for (const name of fixtureNames) {
    const want = expected.fixtures[name].ingest
    if (!want) continue
    const match = want.decision === 'add-to-request' ? ` by ${want.matchedBy} to ${want.requestId}` : ''
    const flags = want.flags.join(', ')
    it(`when ${name} goes through the filters, then it is ${want.decision}${match} with flags [${flags}]`, async () => {
      const ctx = await ingest(loadFixture(name))
      assert.deepEqual(Object.keys(ctx.flags).sort(), [...want.flags].sort(), 'flags')
      assert.equal(ctx.suppressAutomaticMail, want.suppressAutomaticMail, 'suppressAutomaticMail')
      const decision = ingestDecision(ctx)
      assert.equal(decision.kind, want.decision, `decision: ${JSON.stringify(decision)}`)
      if (decision.kind === 'add-to-request') {
        assert.equal(decision.requestId, want.requestId)
        assert.equal(decision.matchedBy, want.matchedBy)
        assert.equal(decision.outboundMessageId, want.outboundMessageId)
      }
      if (want.reasonIncludes !== undefined) {
        const reason = decision.kind === 'ignored' ? decision.reason : Object.values(ctx.flags).join(' | ')
        const message = `${JSON.stringify(reason)} includes ${JSON.stringify(want.reasonIncludes)}`
        assert.ok(reason.includes(want.reasonIncludes), message)
      }
    })
  }
})

describe('ingest filter chain', () => {
  it('when the chain is listed, then the order is explicit: loops first, classifiers, threading, outcome', () => {
    assert.deepEqual(
      ingestFilters.map((f) => f.name),
      ['own-mail', 'auto-submitted', 'bounce', 'bulk', 'threading', 'automatic-mail-outcome'],
    )
  })

  it('when a filter sets an outcome, then the later filters do not run', async () => {
    const ran: string[] = []
    const record = (name: string, act?: (ctx: IngestContext) => void): IngestFilter => ({
      name,
      run(ctx) {
        ran.push(name)
        act?.(ctx)
      },
    })
    const parsed = await parseMail(loadFixture('plain.eml'))
    const ctx = createContext({ mail: parsed, mailbox: expected.mailbox, lookups: fakeLookups() })
    await runIngestFilters(ctx, [
      record('a'),
      record('b', (c) => {
        c.outcome = { kind: 'ignored', reason: 'test' }
      }),
      record('c'),
    ])
    assert.deepEqual(ran, ['a', 'b'])
  })

  it('when our own mail comes back, then no lookup is made at all', async () => {
    const lookups = fakeLookups()
    const parsed = await parseMail(loadFixture('own-address-loop.eml'))
    await runIngestFilters(createContext({ mail: parsed, mailbox: expected.mailbox, lookups }))
    assert.deepEqual(lookups.calls, [])
  })

  it('when a lookup fails, then the chain rejects with that same error (the pipeline decides to retry)', async () => {
    const failure = new Error('database is down')
    const ctx = createContext({
      mail: await parseMail(loadFixture('reply-in-reply-to.eml')),
      mailbox: expected.mailbox,
      lookups: {
        requestByMessageIds: () => Promise.reject(failure),
        requestByNumber: () => Promise.reject(failure),
      },
    })
    await assert.rejects(runIngestFilters(ctx), (err) => err === failure)
  })

  it('when a mail carries made-up decision headers, then they decide nothing', async () => {
    const ctx = await ingest(
      mail(`
From: Eve <eve@attacker.example>
To: support@example.test
Subject: hello
Message-ID: <forged-1@attacker.example>
X-Deskmail-Outcome: ignored
X-Deskmail-Request: 12
X-Zammad-Ticket-Number: 12
X-Thread: 1012`),
    )
    assert.deepEqual(ingestDecision(ctx), { kind: 'new-request' })
    assert.deepEqual(ctx.flags, {})
  })

  it('when References and In-Reply-To are known, then the nearest References id is asked first', async () => {
    const lookups = fakeLookups()
    const parsed = await parseMail(loadFixture('reply-references.eml'))
    await runIngestFilters(createContext({ mail: parsed, mailbox: expected.mailbox, lookups }))
    assert.deepEqual(lookups.calls, [
      'ids:req12.out1@desk.example.test,first-mail-12@customer.example,unknown-root@elsewhere.example',
    ])
  })

  it('when References are unknown but the subject has a token, then the subject decides', async () => {
    const ctx = await ingest(
      mail(`
From: a@customer.example
To: support@example.test
Subject: Re: [#40] badge
Message-ID: <x-1@customer.example>
References: <nobody-knows@elsewhere.example>`),
    )
    assert.deepEqual(ctx.thread, { requestId: 1040, matchedBy: 'subject' })
  })

  it('when the subject token names no request, then a new request is started', async () => {
    const ctx = await ingest(
      mail(`
From: a@customer.example
To: support@example.test
Subject: Re: [#999] what
Message-ID: <x-2@customer.example>`),
    )
    assert.deepEqual(ingestDecision(ctx), { kind: 'new-request' })
  })

  it('when the mail references its own Message-ID, then it does not thread onto itself', async () => {
    const lookups = fakeLookups()
    const parsed = await parseMail(
      mail(`
From: a@customer.example
To: support@example.test
Subject: loop
Message-ID: <first-mail-12@customer.example>
In-Reply-To: <first-mail-12@customer.example>`),
    )
    const ctx = await runIngestFilters(createContext({ mail: parsed, mailbox: expected.mailbox, lookups }))
    assert.equal(ctx.thread, undefined)
    assert.deepEqual(lookups.calls, [])
  })

  it('when Auto-Submitted is "no", then the mail is a normal request', async () => {
    const ctx = await ingest(
      mail(`
From: a@customer.example
To: support@example.test
Subject: hello
Message-ID: <x-3@customer.example>
Auto-Submitted: no (a human wrote this)`),
    )
    assert.deepEqual(ctx.flags, {})
    assert.equal(ctx.suppressAutomaticMail, false)
  })

  it('when Auto-Submitted is auto-generated, then it is an auto-reply', async () => {
    const ctx = await ingest(
      mail(`
From: a@customer.example
To: support@example.test
Subject: report
Message-ID: <x-4@customer.example>
Auto-Submitted: Auto-Generated`),
    )
    assert.equal(ctx.flags.autoReply, 'Auto-Submitted: auto-generated')
    assert.equal(ingestDecision(ctx).kind, 'ignored')
  })

  it('when only Return-Path is empty, then it is treated as a notification and not a request', async () => {
    const ctx = await ingest(
      mail(`
Return-Path: < >
From: notifier@customer.example
To: support@example.test
Subject: something
Message-ID: <x-5@customer.example>`),
    )
    assert.match(ctx.flags.bounce ?? '', /empty Return-Path/)
    assert.equal(ingestDecision(ctx).kind, 'ignored')
  })

  it('when any List-* header is present, then the mail is bulk but still a request', async () => {
    const ctx = await ingest(
      mail(`
From: shop@store.example
To: support@example.test
Subject: offers
Message-ID: <x-6@store.example>
List-Unsubscribe: <https://store.example/u>`),
    )
    assert.equal(ctx.flags.bulk, 'mailing-list header list-unsubscribe')
    assert.deepEqual(ingestDecision(ctx), { kind: 'new-request' })
  })

  it('when the From address is ours in another case, then it is still our own mail', async () => {
    const ctx = await ingest(
      mail(`
From: HELP@Example.Test
To: support@example.test
Subject: x
Message-ID: <x-7@mail.example.test>`),
    )
    assert.equal(ctx.flags.ownMail, 'sent from our own address help@example.test')
    assert.equal(ingestDecision(ctx).kind, 'ignored')
  })
})
