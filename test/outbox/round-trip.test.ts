import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startTestApp } from '../support/app.ts'
import type { TestApp } from '../support/app.ts'
import { connectIncoming, incomingForm, registerDeskmail, startMailWorld } from '../support/mail-world.ts'
import type { MailWorld } from '../support/mail-world.ts'
import { dialects } from '../support/dialects.ts'
import type { HttpClient } from '../support/http-client.ts'
import type { ReceivedMessage } from '../harness/smtp-sink.ts'
import { connectedOutgoingServer, header } from './support.ts'

const SUPPORT = 'support@example.test'
const HELP = 'help@example.test'

/** What the instance was doing, for the message of a timeout. */
let diagnose: () => Promise<string> = async () => ''

/** Polls until `check` returns a value (not undefined/false), at most `timeoutMs`. */
async function until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; ${await diagnose()}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

function mail(h: Record<string, string | undefined>, body: string): string {
  const lines = Object.entries(h).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}: ${v}`)
  return [...lines, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', '', body, ''].join('\r\n')
}

/**
 * The whole conversation with real servers: the customer's mail arrives in Dovecot, the worker
 * turns it into a request, the agent answers on the request page, the SMTP server receives the
 * reply, and the customer's answer to it (appended to Dovecot) lands in the same request.
 */
for (const dialect of dialects) {
  describe(`conversation round trip through Dovecot and SMTP on ${dialect}`, () => {
    let world: MailWorld
    let app: TestApp
    let agent: HttpClient
    before(async () => {
      world = await startMailWorld({ smtp: true })
      // A short heartbeat: the worker claims the mailboxes connected during the test at once.
      app = await startTestApp({ dialect, workers: true, env: { DESKMAIL_MESSAGE_ID_DOMAIN: 'desk.example.test', DESKMAIL_HEARTBEAT_SECONDS: '1' } })
      registerDeskmail(world, app.url)
      agent = await app.admin()
      await connectIncoming(world, agent, incomingForm(world, SUPPORT))
      await connectIncoming(world, agent, incomingForm(world, HELP, { auto_ack_enabled: 'on', auto_ack_subject: 'We got it: {{subject}}', auto_ack_body: 'Your request is #{{number}}.' }))
      await connectedOutgoingServer(app, world, SUPPORT, { isDefault: true, displayName: 'Example Support' })
      diagnose = async () => {
        const servers = await app.services.emailServers.list()
        const audit = await db().selectFrom('inbound_mail').select(['server_id', 'subject', 'outcome', 'outcome_reason']).execute()
        const outbox = await app.services.outbox.list()
        return JSON.stringify({
          servers: servers.map((x) => [x.id, x.emailAddress, x.status, x.statusMessage]),
          audit,
          outbox: outbox.map((o) => [o.id, o.kind, o.status, o.lastError]),
          leases: await db().selectFrom('mailbox_leases').selectAll().execute(),
        })
      }
    })
    after(async () => {
      await app?.stop()
      await world?.stop()
    })

    const db = () => app.services.storage.db
    const requestWithSubject = (subject: string) => db().selectFrom('requests').selectAll().where('subject', '=', subject).execute()
    const messagesOf = (requestId: number) => db().selectFrom('messages').selectAll().where('request_id', '=', requestId).orderBy('id').execute()
    const sinkMail = async (predicate: (m: ReceivedMessage) => boolean) => {
      try {
        return await world.smtp!.waitForMessage(predicate, 20_000)
      } catch (err) {
        throw new Error(`${(err as Error).message}; ${await diagnose()}`)
      }
    }

    it('when the customer writes, the agent replies and the customer answers, then the answer lands in the same request', async () => {
      const subject = `Printer on fire ${dialect}`
      const firstId = `first.${Date.now()}@customer.test`
      await world.dovecot.deliver(SUPPORT, mail({ From: 'Ann Customer <ann@customer.test>', To: SUPPORT, Subject: subject, 'Message-ID': `<${firstId}>`, Date: new Date().toUTCString() }, 'It is burning.'))
      const request = await until('the request', async () => (await requestWithSubject(subject))[0])

      // The agent answers on the request page (the portal's multipart form, CSRF token in the URL).
      const page = await agent.get(`/requests/${request!.id}`)
      assert.equal(page.status, 200)
      const action = /action="(\/requests\/\d+\/replies\?_csrf=[^"]+)"/.exec(page.text)?.[1]?.replace(/&#(\d+);/g, (_, c) => String.fromCharCode(Number(c)))
      assert.ok(action, 'the request page has the reply form')
      const form = new FormData()
      form.append('body', 'Unplug it, we are coming.')
      const posted = await agent.request('POST', action, { body: form as any })
      assert.equal(posted.status, 303, posted.text)

      const reply = await sinkMail((m) => header(m.raw, 'in-reply-to') === `<${firstId}>`)
      assert.deepEqual(reply.to, ['ann@customer.test'])
      assert.equal(reply.authUser, SUPPORT)
      assert.equal(header(reply.raw, 'subject'), `Re: [#${request!.number}] ${subject}`)
      assert.equal(header(reply.raw, 'references'), `<${firstId}>`)
      const ourId = header(reply.raw, 'message-id')!
      assert.match(ourId, new RegExp(`^<r${request!.number}\\.m\\d+\\.[0-9a-f]+@desk\\.example\\.test>$`))
      await until('the reply marked sent', async () => (await messagesOf(request!.id)).some((m) => m.direction === 'outbound' && m.delivery_status === 'sent'))

      // The customer's mail client answers the reply: In-Reply-To and References point at ours.
      const answerId = `answer.${Date.now()}@customer.test`
      await world.dovecot.deliver(
        SUPPORT,
        mail({ From: 'ann@customer.test', To: SUPPORT, Subject: `Re: ${header(reply.raw, 'subject')}`, 'Message-ID': `<${answerId}>`, 'In-Reply-To': ourId, References: `<${firstId}> ${ourId}`, Date: new Date().toUTCString() }, 'Thanks, it is out.'),
      )
      const conversation = await until('the answer in the request', async () => {
        const all = await messagesOf(request!.id)
        return all.some((m) => m.message_id_header === answerId) ? all : undefined
      })
      assert.deepEqual(conversation.map((m) => m.direction), ['inbound', 'outbound', 'inbound'])
      assert.equal((await requestWithSubject(subject)).length, 1)
      assert.equal((await db().selectFrom('requests').select('id').where('subject', 'like', `%${subject}%`).execute()).length, 1, 'no new request')

      // A client that drops the threading headers still lands in the request through [#N].
      const bareId = `bare.${Date.now()}@customer.test`
      await world.dovecot.deliver(SUPPORT, mail({ From: 'ann@customer.test', To: SUPPORT, Subject: `AW: [#${request!.number}] ${subject}`, 'Message-ID': `<${bareId}>`, Date: new Date().toUTCString() }, 'One more thing.'))
      await until('the bare answer in the request', async () => (await messagesOf(request!.id)).some((m) => m.message_id_header === bareId))
      assert.equal(world.smtp!.messages.filter((m) => header(m.raw, 'in-reply-to') === `<${firstId}>`).length, 1, 'the reply went out once')
    })

    it('when an auto-responder answers the acknowledgement, then the loop stops after the first message', async () => {
      const robot = 'robot@customer.test'
      const subject = `Order status ${dialect}`
      const helpServer = (await app.services.emailServers.list('incoming')).find((s) => s.emailAddress === HELP)!
      const audited = () => db().selectFrom('inbound_mail').select(['id', 'outcome', 'outcome_reason']).where('server_id', '=', helpServer.id).where('sender', 'like', `%${robot}%`).execute()

      await world.dovecot.deliver(HELP, mail({ From: robot, To: HELP, Subject: subject, 'Message-ID': `<order.${Date.now()}@customer.test>`, Date: new Date().toUTCString() }, 'Where is my order?'))
      const ack = await sinkMail((m) => m.to.includes(robot))
      assert.equal(header(ack.raw, 'auto-submitted'), 'auto-replied')
      assert.equal(header(ack.raw, 'x-auto-response-suppress'), 'All')
      assert.match(header(ack.raw, 'subject') ?? '', new RegExp(`^\\[#\\d+\\] We got it: ${subject}$`))

      // The responder answers everything it gets, marking its answer as automatic (RFC 3834).
      await world.dovecot.deliver(
        HELP,
        mail({ From: robot, To: HELP, Subject: `Automatic reply: ${header(ack.raw, 'subject')}`, 'Message-ID': `<auto.${Date.now()}@customer.test>`, 'In-Reply-To': header(ack.raw, 'message-id'), 'Auto-Submitted': 'auto-replied', Date: new Date().toUTCString() }, 'I am a robot.'),
      )
      // A cruder responder writes a brand-new mail with no marks at all: a new request, but the
      // per-sender rate limit keeps the acknowledgement from going out again.
      await world.dovecot.deliver(HELP, mail({ From: robot, To: HELP, Subject: `Re ${subject} (robot)`, 'Message-ID': `<crude.${Date.now()}@customer.test>`, Date: new Date().toUTCString() }, 'Received.'))
      await until('both answers ingested', async () => ((await audited()).length >= 3 ? true : undefined))
      // Anything queued by those two mails was queued in their transactions: none is waiting.
      const acks = await db().selectFrom('outbox').select(['id', 'status']).where('kind', '=', 'auto_ack').where('envelope_to', '=', robot).execute()
      assert.equal(acks.length, 1, 'one acknowledgement, however the responder answers')
      assert.equal(world.smtp!.messages.filter((m) => m.to.includes(robot)).length, 1)
      const outcomes = (await audited()).map((a) => a.outcome).sort()
      assert.deepEqual(outcomes.filter((o) => o === 'new_request').length, 2, `outcomes: ${outcomes.join(', ')}`)
    })
  })
}
