import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { IngestOutcomeRow } from '../../src/ingest/pipeline.ts'
import { dialects } from '../support/dialects.ts'
import { expected, fixtureNames, loadFixture } from '../fixtures/mail/corpus.ts'
import { insertServer, startPipelineWorld } from './support.ts'
import type { PipelineWorld } from './support.ts'

/**
 * The hostile fixture corpus (test/fixtures/mail) through the real pipeline and database: every
 * message is ingested or quarantined, never thrown, with the outcome expected.json gives the
 * filter chain. The database is seeded with what expected.json's fake lookups know (requests #12
 * and #40 and their messages), so threading is checked against real rows.
 */
for (const dialect of dialects) {
  describe(`the fixture corpus through the pipeline on ${dialect}`, () => {
    let world: PipelineWorld
    /** expected.json's ids → ours. */
    const requestIds = new Map<number, number>()
    const messageRowIds = new Map<number, number>()
    const outcomes = new Map<string, IngestOutcomeRow>()

    before(async () => {
      world = await startPipelineWorld(dialect, { messageIdDomain: expected.mailbox.ownMessageIdDomain })
      const db = world.storage.db
      for (const alias of expected.mailbox.ownAddresses) await insertServer(world.storage, { email: alias, direction: 'outgoing' })
      const now = Date.now()
      for (const [number, fakeId] of Object.entries(expected.requestNumbers)) {
        const row = await db
          .insertInto('requests')
          .values({ number: Number(number), subject: `Seeded ${number}`, status: 'open', server_id: world.server.id, created_at: now, last_activity_at: now })
          .returning('id')
          .executeTakeFirstOrThrow()
        requestIds.set(fakeId, row.id)
      }
      for (const [messageId, match] of Object.entries(expected.knownMessageIds)) {
        const row = await db
          .insertInto('messages')
          .values({
            request_id: requestIds.get(match.requestId)!,
            direction: match.direction,
            message_id_header: messageId,
            delivery_status: match.direction === 'outbound' ? 'sent' : 'received',
            created_at: now,
          })
          .returning('id')
          .executeTakeFirstOrThrow()
        messageRowIds.set(match.messageRowId, row.id)
      }
      // One batch with the whole corpus, as a mailbox sync would hand it over.
      const batch = fixtureNames.map((name) => ({ sourceKey: `fixture:${name}`, raw: loadFixture(name) }))
      const rows = await world.pipeline.ingestBatch(world.server, batch)
      rows.forEach((row, i) => outcomes.set(fixtureNames[i]!, row))
    })
    after(async () => {
      await world?.cleanup()
    })

    for (const name of fixtureNames) {
      const want = expected.fixtures[name]!
      const label = want.parse.throws ? 'quarantined' : want.ingest?.decision ?? 'stored'
      it(`when ${name} is ingested, then it is ${label}`, async () => {
        const out = outcomes.get(name)!
        assert.ok(out, 'one outcome per message')
        const audit = await world.storage.db.selectFrom('inbound_mail').selectAll().where('source_key', '=', `fixture:${name}`).executeTakeFirstOrThrow()
        assert.equal(audit.id, out.inboundMailId)
        assert.equal(audit.outcome, out.outcome)
        if (want.parse.throws) {
          assert.equal(out.outcome, 'quarantined')
          if (want.parse.reasonIncludes) assert.ok(out.reason?.includes(want.parse.reasonIncludes), `${out.reason} includes ${want.parse.reasonIncludes}`)
          return
        }
        const ingest = want.ingest!
        if (ingest.decision === 'ignored') {
          assert.equal(out.outcome, 'ignored')
          if (ingest.reasonIncludes) assert.ok(out.reason?.includes(ingest.reasonIncludes), `${out.reason} includes ${ingest.reasonIncludes}`)
          assert.equal(audit.request_id, null)
          return
        }
        const message = await world.storage.db.selectFrom('messages').selectAll().where('inbound_mail_id', '=', out.inboundMailId).executeTakeFirstOrThrow()
        assert.equal(message.request_id, out.requestId)
        const flags = (message.flags ?? '').split(',').filter(Boolean).sort()
        const wantFlags = ingest.flags.filter((f) => f !== 'ownMail').map((f) => ({ autoReply: 'auto-reply', bounce: 'bounce', bulk: 'bulk' })[f]).sort()
        assert.deepEqual(flags, wantFlags)
        if (ingest.decision === 'new-request') {
          assert.equal(out.outcome, 'new_request')
          const request = await world.storage.db.selectFrom('requests').selectAll().where('id', '=', out.requestId!).executeTakeFirstOrThrow()
          assert.equal(request.is_bulk, ingest.flags.includes('bulk') ? 1 : 0)
        } else {
          assert.equal(out.outcome, 'reply')
          assert.equal(out.requestId, requestIds.get(ingest.requestId!))
          if (ingest.flags.includes('bounce') && ingest.outboundMessageId !== undefined) {
            const ours = await world.storage.db.selectFrom('messages').selectAll().where('id', '=', messageRowIds.get(ingest.outboundMessageId)!).executeTakeFirstOrThrow()
            assert.equal(ours.delivery_status, 'bounced')
            assert.ok(ours.delivery_error)
          }
        }
        if (message.html_body !== null) assert.doesNotMatch(message.html_body, /<script|onerror=|onload=|javascript:/i)
      })
    }

    it('when the corpus went through, then every message has exactly one audit row and its raw mail', async () => {
      const audit = await world.storage.db.selectFrom('inbound_mail').select(['source_key', 'raw_hash']).execute()
      assert.equal(audit.length, fixtureNames.length)
      const hashes = new Set((await world.storage.db.selectFrom('raw_mail').select('hash').execute()).map((r) => r.hash))
      for (const row of audit) assert.ok(hashes.has(row.raw_hash), row.source_key)
    })
  })
}
