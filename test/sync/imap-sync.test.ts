import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { ImapFlow } from 'imapflow'
import { startTestApp } from '../support/app.ts'
import type { TestApp } from '../support/app.ts'
import { connectIncoming, incomingForm, registerDeskmail, startMailWorld } from '../support/mail-world.ts'
import type { MailWorld } from '../support/mail-world.ts'
import { dialects } from '../support/dialects.ts'
import { auditRows, customerMail, maildirCount, requestCount, serverIdOf, serverStatus, waitFor, waitSynced } from './support.ts'

/** Short heartbeat and lease so that the supervisor reacts within a second in tests. */
const WORKER_ENV = { DESKMAIL_HEARTBEAT_SECONDS: '1', DESKMAIL_LEASE_SECONDS: '5' }

/** Counts token endpoint requests of one OAuth client at the stand-in (successful or refused). */
function countTokenRequests(world: MailWorld, clientId: string): () => number {
  let n = 0
  const count = (ctx: any) => {
    if (ctx?.oidc?.client?.clientId === clientId) n++
  }
  world.oauth.provider.on('grant.success', count)
  world.oauth.provider.on('grant.error', count)
  return () => n
}

/** A customer mail with one base64 attachment of `bytes` random bytes. */
function mailWithAttachment(bytes: number): { raw: Buffer; subject: string; attachment: Buffer } {
  const mail = customerMail()
  const attachment = randomBytes(bytes)
  const [head] = mail.raw.split('\r\n\r\n')
  const raw = Buffer.from(
    [
      head!.replace('Content-Type: text/plain; charset=utf-8', 'Content-Type: multipart/mixed; boundary="mixed-1"'),
      '',
      '--mixed-1',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'The logs are attached.',
      '--mixed-1',
      'Content-Type: application/octet-stream; name="logs.bin"',
      'Content-Disposition: attachment; filename="logs.bin"',
      'Content-Transfer-Encoding: base64',
      '',
      attachment.toString('base64').replace(/.{76}/g, '$&\r\n'),
      '--mixed-1--',
      '',
    ].join('\r\n'),
  )
  return { raw, subject: mail.subject, attachment }
}

/** Counts calls to an ImapFlow method (the app runs in this process) until `restore()`. */
function countCalls(method: 'search' | 'download'): { calls(): number; restore(): void } {
  const proto = ImapFlow.prototype as unknown as Record<string, (...args: unknown[]) => unknown>
  const original = proto[method]!
  let n = 0
  proto[method] = function (this: unknown, ...args: unknown[]) {
    n++
    return original.apply(this, args)
  }
  return { calls: () => n, restore: () => void (proto[method] = original) }
}

for (const dialect of dialects) {
  describe(`IMAP mailbox sync on ${dialect}`, () => {
    let world: MailWorld
    let app: TestApp
    before(async () => {
      world = await startMailWorld()
      app = await startTestApp({ dialect, workers: true, env: WORKER_ENV })
      registerDeskmail(world, app.url)
      registerDeskmail(world, app.url, { clientId: 'short-lived', accessTokenTTL: 3 })
      registerDeskmail(world, app.url, { clientId: 'revocable' })
    })
    after(async () => {
      await app?.stop()
      await world?.stop()
    })

    const db = () => app.services.storage.db
    const waitForSubject = (serverId: number, subject: string) =>
      waitFor(`"${subject}" ingested`, async () => (await auditRows(db(), serverId)).find((r) => r.subject === subject))

    it('when a message is delivered while the worker IDLEs, then it becomes a request within seconds', async () => {
      const admin = await app.admin()
      await connectIncoming(world, admin, incomingForm(world, 'push@example.test'))
      const id = await serverIdOf(app, 'push@example.test')
      await waitSynced(app, id)

      const mail = customerMail()
      await world.dovecot.deliver('push@example.test', mail.raw)
      const row = await waitForSubject(id, mail.subject)
      assert.equal(row.outcome, 'new_request')
      assert.match(row.source_key, /^imap:\d+:1$/)
      assert.equal(await requestCount(db(), mail.subject), 1)
      const cursor = await db().selectFrom('mailbox_cursors').selectAll().where('server_id', '=', id).executeTakeFirstOrThrow()
      assert.equal(Number(cursor.last_uid), 1)
      await waitFor('status Synced: 1 new', async () => (await serverStatus(app, id)).status_message === 'Synced: 1 new')
      // Never rely on \Seen: with "leave" the message stays unread in the mailbox.
      assert.equal(maildirCount(world.dovecot.maildir('push@example.test')), 1)
    })

    it('when mail waits in the mailbox at connect, then each message is ingested once and moved to the folder after commit', async () => {
      const mails = Array.from({ length: 5 }, () => customerMail())
      await world.dovecot.bulkLoad('moved@example.test', mails.map((m) => Buffer.from(m.raw)))
      const admin = await app.admin()
      await connectIncoming(world, admin, incomingForm(world, 'moved@example.test', { ack_action: 'move', ack_folder: 'Processed' }))
      const id = await serverIdOf(app, 'moved@example.test')
      for (const m of mails) await waitForSubject(id, m.subject)
      await waitFor('inbox emptied by MOVE', async () => maildirCount(world.dovecot.maildir('moved@example.test')) === 0)
      assert.equal(maildirCount(`${world.dovecot.maildir('moved@example.test')}/.Processed`), 5)
      const rows = await auditRows(db(), id)
      assert.equal(rows.length, 5)
      for (const m of mails) assert.equal(await requestCount(db(), m.subject), 1)
    })

    it('when UIDVALIDITY changes, then the folder is resynced from UID 1 without duplicates', async () => {
      const id = await serverIdOf(app, 'push@example.test')
      const second = customerMail()
      await world.dovecot.deliver('push@example.test', second.raw)
      await waitForSubject(id, second.subject)
      const before = await db().selectFrom('mailbox_cursors').selectAll().where('server_id', '=', id).executeTakeFirstOrThrow()

      await world.dovecot.resetUidValidity('push@example.test')
      const third = customerMail()
      await world.dovecot.deliver('push@example.test', third.raw)
      await waitForSubject(id, third.subject)
      const after = await waitFor('new UIDVALIDITY stored', async () => {
        const c = await db().selectFrom('mailbox_cursors').selectAll().where('server_id', '=', id).executeTakeFirstOrThrow()
        return c.uidvalidity !== before.uidvalidity && Number(c.last_uid) >= 3 ? c : undefined
      })
      assert.equal(Number(after.last_uid), 3)
      const rows = await auditRows(db(), id)
      // A duplicate creates nothing, not even an audit row.
      assert.equal(rows.length, 3, JSON.stringify(rows))
      for (const subject of new Set(rows.map((r) => r.subject!))) assert.equal(await requestCount(db(), subject), 1, subject)
    })

    it('when more than 500 messages wait at connect, some of them large, then each is ingested once, whole and in UID order', async () => {
      const mailbox = 'backlog@example.test'
      const small = Array.from({ length: 560 }, () => customerMail())
      // Two above the size listed without SEARCH LARGER's help, one large enough to be streamed.
      const large = [mailWithAttachment(300_000), mailWithAttachment(250_000), mailWithAttachment(5 * 1024 * 1024)]
      const raws: Buffer[] = small.map((m) => Buffer.from(m.raw))
      raws.splice(100, 0, large[0]!.raw)
      raws.splice(300, 0, large[1]!.raw)
      raws.splice(500, 0, large[2]!.raw)
      await world.dovecot.bulkLoad(mailbox, raws)
      const searches = countCalls('search')
      const downloads = countCalls('download')
      try {
        const admin = await app.admin()
        await connectIncoming(world, admin, incomingForm(world, mailbox))
        const id = await serverIdOf(app, mailbox)
        await waitFor('backlog ingested', async () => (await auditRows(db(), id)).length === raws.length, 60_000, 100)
        assert.ok(searches.calls() >= 2, 'the new messages were listed with SEARCH')
        assert.ok(downloads.calls() >= 1, 'the large message was streamed')
        const rows = (await auditRows(db(), id)).sort((a, b) => a.id - b.id)
        assert.ok(rows.every((r) => r.outcome === 'new_request'))
        // Audit rows are numbered in commit order: UID order, every UID once.
        const uids = rows.map((r) => Number(r.source_key.split(':')[2]))
        assert.deepEqual(uids, [...uids].sort((a, b) => a - b))
        assert.deepEqual(new Set(uids), new Set(raws.map((_, i) => i + 1)))
        const cursor = await db().selectFrom('mailbox_cursors').selectAll().where('server_id', '=', id).executeTakeFirstOrThrow()
        assert.equal(Number(cursor.last_uid), raws.length)
        for (const m of large) {
          const hash = createHash('sha256').update(m.raw).digest('hex')
          const stored = await db().selectFrom('raw_mail').select(['size', 'content']).where('hash', '=', hash).executeTakeFirstOrThrow()
          assert.equal(Number(stored.size), m.raw.length)
          assert.ok(Buffer.from(stored.content).equals(m.raw), `${m.subject}: raw mail stored byte for byte`)
          const row = rows.find((r) => r.subject === m.subject)!
          const attachments = db().selectFrom('attachments').select(['sha256', 'size'])
          const [attachment] = await attachments.where('message_id', '=', row.message_id!).execute()
          assert.equal(attachment!.sha256, createHash('sha256').update(m.attachment).digest('hex'))
          assert.equal(Number(attachment!.size), m.attachment.length)
        }
      } finally {
        searches.restore()
        downloads.restore()
      }
    })

    it('when Dovecot restarts during IDLE, then the worker reconnects and later mail still arrives', async () => {
      const id = await serverIdOf(app, 'push@example.test')
      await waitSynced(app, id)
      await world.dovecot.restart()
      const mail = customerMail()
      await world.dovecot.deliver('push@example.test', mail.raw)
      const row = await waitForSubject(id, mail.subject)
      assert.equal(row.outcome, 'new_request')
      await waitFor('connected again', async () => (await serverStatus(app, id)).status === 'connected')
    })

    it('when the access token expires during a long sync, then later syncs keep working with a fresh token', async () => {
      const mailbox = 'longsync@example.test'
      const backlog = Array.from({ length: 400 }, () => customerMail())
      await world.dovecot.bulkLoad(mailbox, backlog.map((m) => Buffer.from(m.raw)))
      const admin = await app.admin()
      await connectIncoming(world, admin, incomingForm(world, mailbox, { client_id: 'short-lived' }))
      const id = await serverIdOf(app, mailbox)
      await waitFor('backlog ingested', async () => (await auditRows(db(), id)).length === backlog.length, 60_000, 100)
      const server = await app.services.emailServers.get(id)
      const tokenBefore = (await app.services.credentials.get(server.credential_id!))!
      // The 3-second access token of the IDLE connection is dead by now; the connection lives on.
      await waitFor('access token expired', async () => (tokenBefore.access_token_expires_at ?? 0) < Date.now() - 500, 10_000)
      const idle = customerMail()
      await world.dovecot.deliver(mailbox, idle.raw)
      await waitForSubject(id, idle.subject)

      // A reconnect must present a fresh token, not the expired one.
      await world.dovecot.restart()
      const later = customerMail()
      await world.dovecot.deliver(mailbox, later.raw)
      await waitForSubject(id, later.subject)
      const tokenAfter = (await app.services.credentials.get(server.credential_id!))!
      assert.ok((tokenAfter.refreshed_at ?? 0) > (tokenBefore.refreshed_at ?? 0), 'the token was refreshed for the reconnect')
      assert.equal(tokenAfter.status, 'connected')
      assert.equal((await auditRows(db(), id)).length, backlog.length + 2)
    })

    it('when the refresh token is revoked, then the server needs re-authorization and no more token requests are made', async () => {
      const mailbox = 'revoked@example.test'
      const admin = await app.admin()
      await connectIncoming(world, admin, incomingForm(world, mailbox, { client_id: 'revocable' }))
      const id = await serverIdOf(app, mailbox)
      await waitSynced(app, id)
      const tokenRequests = countTokenRequests(world, 'revocable')

      world.oauth.revokeAll(mailbox)
      // The open IMAP session outlives the revocation; the next connect finds out.
      await world.dovecot.restart()
      await waitFor('Needs re-authorization', async () => (await serverStatus(app, id)).status === 'needs_reauthorization')
      const atPark = tokenRequests()
      assert.ok(atPark >= 1, 'the refresh was attempted once the mail server refused the token')
      const list = await admin.get('/admin/support-channel/emails')
      assert.match(list.text, /Needs re-authorization/)

      // Several heartbeats and another reconnect later: no retry storm at the provider.
      const mail = customerMail()
      await world.dovecot.deliver(mailbox, mail.raw)
      await new Promise((r) => setTimeout(r, 4_000))
      assert.equal(tokenRequests(), atPark)
      assert.equal((await serverStatus(app, id)).status, 'needs_reauthorization')
      assert.equal((await auditRows(db(), id)).length, 0)
    })
  })
}
