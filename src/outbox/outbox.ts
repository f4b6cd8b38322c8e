import crypto from 'node:crypto'
import os from 'node:os'
import type { Kysely, Transaction } from 'kysely'
import type { Db } from '../storage/database.ts'
import type { StorageCapabilities } from '../storage/dialect.ts'
import type { Database, EmailServer, OutboxItem, OutboxStatus } from '../storage/schema.ts'
import type { Logger } from '../shared/logger.ts'
import type { Metrics } from '../shared/metrics.ts'
import { AppError, isAppError } from '../shared/errors.ts'
import { backoffDelay } from '../shared/backoff.ts'
import type { EmailServerService } from '../mailboxes/email-servers.ts'
import type { CredentialStore } from '../oauth/credential-store.ts'
import { formatRequestSubject } from '../ingest/filters/subject-token.ts'
import { formatAddress } from '../requests/addresses.ts'
import { composeMessage, newMessageId, validateAddress } from './compose.ts'
import type { OutgoingAttachment } from './compose.ts'
import { replySubject, threadingHeaders } from './threading.ts'
import { SmtpDelivery } from './delivery.ts'
import type { DeliveryFailure } from './delivery-errors.ts'
import { classifyDeliveryError } from './delivery-errors.ts'
import {
  autoAckDailyLimit,
  autoAckMinIntervalMs,
  dayMs,
  defaultAutoAckBody,
  defaultAutoAckSubject,
  renderAutoAckTemplate,
} from './auto-ack.ts'
import type { AutoAckResult } from './auto-ack.ts'

/** How long one process may hold a claimed item before it counts as dead; renewed while sending. */
export const CLAIM_MS = 60_000
/**
 * Temporary failures are retried this many times, then the item fails: with the backoff capped at
 * 30 minutes that is about three days, as MTAs keep trying for days (RFC 5321 4.5.4.1: "at least
 * 4-5 days" for an MTA; an agent waiting for a reply wants to know sooner).
 */
export const MAX_ATTEMPTS = 150
/** The longest reply body accepted. */
export const maxReplyBodyChars = 200_000

export const outboxStatusLabels: Record<OutboxStatus, string> = {
  queued: 'Queued',
  sending: 'Sending',
  sent: 'Sent',
  failed: 'Failed',
  waiting_authorization: 'Waiting for authorization',
  uncertain: 'Outcome unknown',
}

/** What the portal and the API show of an outbox item: never the raw message. */
export interface OutboxSummary {
  id: number
  kind: 'reply' | 'auto_ack' | 'test'
  status: OutboxStatus
  statusLabel: string
  /** The row id of the outbound message in the conversation (none for test mail). */
  messageRowId: number | null
  requestId: number | null
  serverId: number | null
  serverName: string | null
  to: string[]
  messageIdHeader: string
  attempts: number
  lastError: string | null
  smtpResponse: string | null
  nextAttemptAt: number | null
  createdAt: number
  sentAt: number | null
  /** Failed or of unknown outcome: an agent may send it again (same Message-ID). */
  canSendAgain: boolean
}

export interface QueuedMessage {
  outboxId: number
  messageRowId: number | null
  /** Without angle brackets. */
  messageIdHeader: string
}

export interface ReplyInput {
  requestId: number
  authorUserId: number | null
  body: string
  attachments?: OutgoingAttachment[]
}

/**
 * The event the ingest pipeline gives its `onNewRequest` listeners (structurally the pipeline's
 * `NewRequestEvent`), inside the transaction that creates the request.
 */
export interface NewRequestEventLike {
  server: EmailServer
  requestId: number
  requestNumber: number
  subject: string
  requester: { address: string; name: string }
  inboundMessageId: string | undefined
  suppressAutomaticMail: boolean
}

type Queryable = Kysely<Database>

const summaryColumns = [
  'outbox.id',
  'outbox.kind',
  'outbox.status',
  'outbox.message_id',
  'outbox.request_id',
  'outbox.server_id',
  'outbox.envelope_to',
  'outbox.message_id_header',
  'outbox.attempts',
  'outbox.last_error',
  'outbox.smtp_response',
  'outbox.next_attempt_at',
  'outbox.created_at',
  'outbox.sent_at',
] as const

/**
 * The durable outbox (DESIGN.md: "outbox ---- outgoing mail queue, retries, threading headers").
 *
 * A reply is written as the conversation's outbound message and as an outbox row holding the
 * finished MIME message, in the transaction that updates the request: either the agent's reply
 * exists and will be sent, or neither. Delivery happens later, by whichever process claims the row
 * (the sender task, or `deliverNow` for the Send Test Email page), so a slow or failing mail server
 * never blocks the portal and no process-local state is needed for correctness.
 */
export class OutboxService {
  readonly owner = `${os.hostname()}:${process.pid}:${crypto.randomBytes(3).toString('hex')}`
  readonly #listeners = new Set<() => void>()
  readonly #delivery: SmtpDelivery

  constructor(
    private readonly deps: {
      db: Db
      caps: StorageCapabilities
      messageIdDomain: string
      emailServers: EmailServerService
      credentials: CredentialStore
      logger: Logger
      metrics?: Metrics
      now?: () => number
    },
  ) {
    this.#delivery = new SmtpDelivery(deps.logger)
  }

  private get db(): Db {
    return this.deps.db
  }

  private now(): number {
    return (this.deps.now ?? Date.now)()
  }

  // ------------------------------------------------------------------------------------------
  // Queueing

  /**
   * Queues an agent's reply: the outbound message (delivery 'queued'), its attachments, the outbox
   * row with the composed MIME message, and the request's last activity, in one transaction.
   * Throws `request_not_found`, `outbox_empty_reply`, `outbox_no_recipient`,
   * `outbox_no_outgoing_server`, `outbox_header_injection`, `outbox_invalid_address`,
   * `outbox_attachments_too_large`.
   */
  async queueReply(input: ReplyInput): Promise<QueuedMessage> {
    const body = (input.body ?? '').replace(/\r\n?/g, '\n')
    const attachments = input.attachments ?? []
    if (body.trim() === '' && attachments.length === 0) throw new AppError('outbox_empty_reply', 'Write a reply (or attach a file) before sending.')
    if (body.length > maxReplyBodyChars) throw new AppError('outbox_reply_too_long', `The reply is too long (at most ${maxReplyBodyChars} characters).`)

    const request = await this.db
      .selectFrom('requests')
      .leftJoin('contacts', 'contacts.id', 'requests.requester_id')
      .select(['requests.id', 'requests.number', 'requests.subject', 'requests.server_id'])
      .select(['contacts.email as requester_email', 'contacts.name as requester_name'])
      .where('requests.id', '=', input.requestId)
      .executeTakeFirst()
    if (!request) throw new AppError('request_not_found', 'This request does not exist.')
    const conversation = await this.db
      .selectFrom('messages')
      .select(['direction', 'message_id_header', 'references_header', 'from_address', 'from_name'])
      .where('request_id', '=', request.id)
      .orderBy('created_at')
      .orderBy('id')
      .execute()
    const lastInbound = [...conversation].reverse().find((m) => m.direction === 'inbound' && m.from_address)
    const toAddress = request.requester_email ?? lastInbound?.from_address
    if (!toAddress) throw new AppError('outbox_no_recipient', 'This request has no customer address to reply to.')
    const to = { address: toAddress, name: request.requester_name ?? lastInbound?.from_name ?? '' }
    validateAddress('customer address', to.address)
    const server = await this.outgoingServerFor(this.db, request.server_id)
    const thread = threadingHeaders(
      conversation.map((m) => ({ direction: m.direction, messageIdHeader: m.message_id_header, referencesHeader: m.references_header })),
    )
    const subject = replySubject(request.number, request.subject)

    const queued = await this.db.transaction().execute(async (trx) => {
      const q = await this.insertConversationMessage(trx, {
        kind: 'reply',
        requestId: request.id,
        requestNumber: request.number,
        authorUserId: input.authorUserId,
        server,
        to,
        subject,
        text: body,
        inReplyTo: thread.inReplyTo,
        references: thread.references,
        attachments,
        automatic: false,
      })
      await trx.updateTable('requests').set({ last_activity_at: this.now() }).where('id', '=', request.id).execute()
      return q
    })
    this.deps.logger.info({ requestId: request.id, outboxId: queued.outboxId, serverId: server.id }, 'reply queued')
    this.notify()
    return queued
  }

  /** Queues a test message through one outgoing server (Send Test Email). */
  async queueTest(serverId: number, toAddress: string, opts: { requestedBy?: string } = {}): Promise<QueuedMessage> {
    const server = await this.deps.emailServers.get(serverId)
    if (server.direction !== 'outgoing') throw new AppError('outbox_not_outgoing_server', 'Test emails are sent through outgoing servers only.')
    const to = validateAddress('To address', toAddress)
    const messageIdHeader = newMessageId(this.deps.messageIdDomain, { prefix: 'test' })
    const composed = await composeMessage({
      from: { address: server.from_address ?? server.email_address, name: server.display_name },
      to: [{ address: to }],
      subject: `deskmail test email from ${server.name}`,
      messageId: messageIdHeader,
      text: [
        'This is a test email from deskmail.',
        '',
        `It was sent through the outgoing email server "${server.name}" (${server.host}:${server.port}) ` +
          `as ${server.from_address ?? server.email_address}${opts.requestedBy ? `, at the request of ${opts.requestedBy}` : ''}.`,
        'If you can read this, replies to requests will reach customers through this server.',
      ].join('\n'),
    })
    const now = this.now()
    const row = await this.db
      .insertInto('outbox')
      .values(queuedRow({ kind: 'test', messageRowId: null, requestId: null, serverId: server.id, composed, messageIdHeader, now }))
      .returning('id')
      .executeTakeFirstOrThrow()
    // No wake-up: the Send Test Email page delivers it itself right away (deliverNow) to show the
    // answer; a sender's poll picks it up otherwise.
    return { outboxId: row.id, messageRowId: null, messageIdHeader }
  }

  /**
   * The automatic acknowledgement of a new request, called by the ingest pipeline inside the
   * transaction that creates the request (so the acknowledgement exists exactly when the request
   * does). Skips, with the reason, whatever must not get automatic mail (see auto-ack.ts).
   */
  async autoAcknowledge(trx: Transaction<Database>, e: NewRequestEventLike): Promise<AutoAckResult> {
    const server = e.server
    if (!server.auto_ack_enabled) return { queued: false, reason: 'disabled' }
    if (e.suppressAutomaticMail) return this.skipped(e, 'automatic_mail')
    let recipient: string
    try {
      recipient = validateAddress('requester address', e.requester.address)
    } catch (err) {
      if (isAppError(err)) return this.skipped(e, 'invalid_address')
      throw err
    }
    const key = recipient.toLowerCase()
    const ours = await trx.selectFrom('email_servers').select(['email_address', 'from_address', 'username']).execute()
    const own = new Set(
      ours
        .flatMap((s) => [s.email_address, s.from_address, s.username])
        .filter((a): a is string => Boolean(a))
        .map((a) => a.toLowerCase()),
    )
    if (own.has(key)) return this.skipped(e, 'own_address')

    const now = this.now()
    const recent = await trx
      .selectFrom('auto_reply_log')
      .select('sent_at')
      .where('recipient', '=', key)
      .where('sent_at', '>', now - dayMs)
      .execute()
    if (recent.length >= autoAckDailyLimit || recent.some((r) => r.sent_at > now - autoAckMinIntervalMs)) return this.skipped(e, 'rate_limited')

    let outgoing: EmailServer
    try {
      outgoing = await this.outgoingServerFor(trx, server.id)
    } catch (err) {
      if (isAppError(err, 'outbox_no_outgoing_server')) return this.skipped(e, 'no_outgoing_server')
      throw err
    }
    const values = { number: e.requestNumber, subject: e.subject.replace(/\p{Cc}/gu, ' ').trim(), name: e.requester.name }
    const subjectTemplate = server.auto_ack_subject?.trim() || defaultAutoAckSubject
    const subject = formatRequestSubject(e.requestNumber, renderAutoAckTemplate(subjectTemplate, values))
    const text = renderAutoAckTemplate(server.auto_ack_body?.trim() || defaultAutoAckBody, values)
    const queued = await this.insertConversationMessage(trx, {
      kind: 'auto_ack',
      requestId: e.requestId,
      requestNumber: e.requestNumber,
      authorUserId: null,
      server: outgoing,
      to: { address: recipient, name: e.requester.name },
      subject,
      text,
      inReplyTo: e.inboundMessageId,
      references: e.inboundMessageId ? [e.inboundMessageId] : [],
      attachments: [],
      automatic: true,
    })
    await trx.insertInto('auto_reply_log').values({ server_id: server.id, recipient: key, sent_at: now }).execute()
    this.deps.logger.info({ requestId: e.requestId, outboxId: queued.outboxId }, 'automatic acknowledgement queued')
    // The row becomes visible when the caller commits; the sender's poll picks it up if this
    // early wake-up comes before the commit.
    setTimeout(() => this.notify(), 100).unref()
    return { queued: true, outboxId: queued.outboxId, messageRowId: queued.messageRowId ?? undefined }
  }

  private skipped(e: NewRequestEventLike, reason: NonNullable<AutoAckResult['reason']>): AutoAckResult {
    this.deps.logger.info({ requestId: e.requestId, reason }, 'no automatic acknowledgement')
    return { queued: false, reason }
  }

  /** Writes the outbound message, its attachments and its outbox row (inside the caller's transaction). */
  private async insertConversationMessage(
    trx: Transaction<Database>,
    m: {
      kind: 'reply' | 'auto_ack'
      requestId: number
      requestNumber: number
      authorUserId: number | null
      server: EmailServer
      to: { address: string; name: string }
      subject: string
      text: string
      inReplyTo: string | undefined
      references: string[]
      attachments: OutgoingAttachment[]
      automatic: boolean
    },
  ): Promise<QueuedMessage> {
    const now = this.now()
    const from = { address: m.server.from_address ?? m.server.email_address, name: m.server.display_name }
    const row = await trx
      .insertInto('messages')
      .values({
        request_id: m.requestId,
        direction: 'outbound',
        in_reply_to: m.inReplyTo ?? null,
        references_header: m.references.length ? m.references.map((r) => `<${r}>`).join(' ') : null,
        from_address: from.address,
        from_name: from.name,
        to_addresses: formatAddress({ address: m.to.address, name: m.to.name }),
        subject: m.subject,
        text_body: m.text,
        author_user_id: m.authorUserId,
        delivery_status: 'queued',
        created_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const messageIdHeader = newMessageId(this.deps.messageIdDomain, { requestNumber: m.requestNumber, messageRowId: row.id })
    const composed = await composeMessage({
      from,
      to: [m.to],
      subject: m.subject,
      messageId: messageIdHeader,
      inReplyTo: m.inReplyTo,
      references: m.references,
      text: m.text,
      attachments: m.attachments,
      automatic: m.automatic,
      date: new Date(now),
    })
    await trx.updateTable('messages').set({ message_id_header: messageIdHeader }).where('id', '=', row.id).execute()
    for (const a of composed.attachments) {
      await trx
        .insertInto('attachments')
        .values({
          message_id: row.id,
          filename: a.filename,
          content_type: a.contentType,
          size: a.content.length,
          content_id: null,
          inline: 0,
          sha256: crypto.createHash('sha256').update(a.content).digest('hex'),
          content: a.content,
        })
        .execute()
    }
    const outbox = await trx
      .insertInto('outbox')
      .values(queuedRow({ kind: m.kind, messageRowId: row.id, requestId: m.requestId, serverId: m.server.id, composed, messageIdHeader, now }))
      .returning('id')
      .executeTakeFirstOrThrow()
    return { outboxId: outbox.id, messageRowId: row.id, messageIdHeader }
  }

  /**
   * The server a request's mail goes out through: the one its incoming server names, else the
   * default outgoing server.
   */
  async outgoingServerFor(db: Queryable, incomingServerId: number | null): Promise<EmailServer> {
    if (incomingServerId !== null) {
      const incoming = await db.selectFrom('email_servers').select('outgoing_server_id').where('id', '=', incomingServerId).executeTakeFirst()
      if (incoming?.outgoing_server_id) {
        const chosen = await db
          .selectFrom('email_servers')
          .selectAll()
          .where('id', '=', incoming.outgoing_server_id)
          .where('direction', '=', 'outgoing')
          .where('enabled', '=', 1)
          .executeTakeFirst()
        if (chosen) return chosen
      }
    }
    const fallback = await db
      .selectFrom('email_servers')
      .selectAll()
      .where('direction', '=', 'outgoing')
      .where('is_default', '=', 1)
      .where('enabled', '=', 1)
      .executeTakeFirst()
    if (fallback) return fallback
    throw new AppError(
      'outbox_no_outgoing_server',
      'No outgoing email server can send this: add one (or enable the default) under Admin > Support Channel > Emails > Outgoing Email Servers.',
    )
  }

  // ------------------------------------------------------------------------------------------
  // Reading

  async list(filter: { statuses?: OutboxStatus[]; requestId?: number; kind?: OutboxItem['kind']; limit?: number } = {}): Promise<OutboxSummary[]> {
    let q = this.db
      .selectFrom('outbox')
      .leftJoin('email_servers', 'email_servers.id', 'outbox.server_id')
      .select([...summaryColumns, 'email_servers.name as server_name'])
      .orderBy('outbox.id', 'desc')
      .limit(Math.min(filter.limit ?? 100, 1000))
    if (filter.statuses?.length) q = q.where('outbox.status', 'in', filter.statuses)
    if (filter.requestId !== undefined) q = q.where('outbox.request_id', '=', filter.requestId)
    if (filter.kind) q = q.where('outbox.kind', '=', filter.kind)
    return (await q.execute()).map(summarize)
  }

  async get(id: number): Promise<OutboxSummary> {
    const row = await this.db
      .selectFrom('outbox')
      .leftJoin('email_servers', 'email_servers.id', 'outbox.server_id')
      .select([...summaryColumns, 'email_servers.name as server_name'])
      .where('outbox.id', '=', id)
      .executeTakeFirst()
    if (!row) throw new AppError('outbox_item_not_found', 'This outgoing message does not exist.')
    return summarize(row)
  }

  /** The newest outbox item of each of these outbound messages (for the request page). */
  async statusForMessages(messageRowIds: number[]): Promise<Map<number, OutboxSummary>> {
    const out = new Map<number, OutboxSummary>()
    if (messageRowIds.length === 0) return out
    const rows = await this.db
      .selectFrom('outbox')
      .leftJoin('email_servers', 'email_servers.id', 'outbox.server_id')
      .select([...summaryColumns, 'email_servers.name as server_name'])
      .where('outbox.message_id', 'in', messageRowIds)
      .orderBy('outbox.id')
      .execute()
    for (const r of rows) out.set(r.message_id!, summarize(r))
    return out
  }

  /** The raw MIME message of an item (for download by an admin). */
  async raw(id: number): Promise<Buffer> {
    const row = await this.db.selectFrom('outbox').select('raw').where('id', '=', id).executeTakeFirst()
    if (!row) throw new AppError('outbox_item_not_found', 'This outgoing message does not exist.')
    return row.raw
  }

  /**
   * Send again, for a failed item or one whose outcome is unknown: the same bytes with the same
   * Message-ID, so a recipient that did get the first copy can recognise the second.
   */
  async resend(id: number): Promise<OutboxSummary> {
    const item = await this.get(id)
    if (!item.canSendAgain) {
      const message = `This message is ${item.statusLabel.toLowerCase()}: only failed messages or messages of unknown outcome can be sent again.`
      throw new AppError('outbox_not_resendable', message)
    }
    const now = this.now()
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('outbox')
        .set({ status: 'queued', next_attempt_at: now, attempts: 0, last_error: null, smtp_response: null, claimed_by: null, claim_until: null })
        .where('id', '=', id)
        .where('status', 'in', ['failed', 'uncertain'])
        .execute()
      if (item.messageRowId) await trx.updateTable('messages').set({ delivery_status: 'queued', delivery_error: null }).where('id', '=', item.messageRowId).execute()
    })
    this.deps.logger.info({ outboxId: id }, 'outgoing message queued again by hand')
    this.notify()
    return this.get(id)
  }

  /** Waits until the item leaves `queued`/`sending` (or its first attempt is done), at most `timeoutMs`. */
  async waitForResult(id: number, timeoutMs: number): Promise<OutboxSummary> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const item = await this.get(id)
      const settled = item.status !== 'sending' && (item.status !== 'queued' || item.lastError !== null)
      if (settled || Date.now() >= deadline) return item
      await new Promise((r) => setTimeout(r, 200))
    }
  }

  // ------------------------------------------------------------------------------------------
  // Wake-up

  /** Called after something was queued (in this process). */
  onQueued(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  private notify(): void {
    for (const l of this.#listeners) l()
  }

  // ------------------------------------------------------------------------------------------
  // Delivery

  /**
   * One round of the sender: items of dead senders become 'uncertain', items waiting for an
   * authorization that is connected again are released, then due items are claimed and sent.
   * Returns how many items were attempted.
   */
  async processDue(limit = 10): Promise<number> {
    await this.recoverStaleClaims()
    await this.releaseAuthorized()
    const claimed = await this.claimDue(limit)
    if (claimed.length === 0) return 0
    // One server's items go one after another through its pooled connection; servers in parallel.
    const byServer = new Map<number, OutboxItem[]>()
    for (const item of claimed) byServer.set(item.server_id ?? 0, [...(byServer.get(item.server_id ?? 0) ?? []), item])
    await Promise.all([...byServer.values()].map(async (items) => {
      for (const item of items) await this.deliverClaimed(item)
    }))
    return claimed.length
  }

  /**
   * Sends one item now, in this process (Send Test Email): claims it unless a sender already has,
   * and returns its state after the attempt (or after `timeoutMs` when another process holds it).
   */
  async deliverNow(id: number, timeoutMs = 15_000): Promise<OutboxSummary> {
    const now = this.now()
    const claimed = await this.db
      .updateTable('outbox')
      .set((eb) => ({ ...this.claim(now), attempts: eb('attempts', '+', 1) }))
      .where('id', '=', id)
      .where('status', '=', 'queued')
      .returningAll()
      .executeTakeFirst()
    if (claimed) await this.deliverClaimed(claimed)
    return this.waitForResult(id, claimed ? 0 : timeoutMs)
  }

  close(): void {
    this.#delivery.close()
  }

  /**
   * A row in 'sending' whose claim ran out belongs to a sender that died (or hung) during its
   * attempt: maybe before the server got the message, maybe after it answered "250" and before we
   * committed 'sent'. SMTP has no idempotency key and no way to ask the server, so resending could
   * deliver the message twice; the item goes to 'uncertain' and waits for a person (Send again).
   * Should it be sent twice anyway, its stable Message-ID lets the recipient's client and our own
   * ingest (threading, dedupe) recognise the copy.
   */
  async recoverStaleClaims(): Promise<number> {
    const now = this.now()
    const stale = await this.db.selectFrom('outbox').select(['id', 'message_id']).where('status', '=', 'sending').where('claim_until', '<', now).execute()
    let n = 0
    for (const s of stale) {
      const message =
        'The sender stopped during the delivery attempt (process ended or lost its claim), so deskmail cannot know ' +
        'whether the server accepted this message. It is not resent automatically: check with the recipient, then use Send again if needed.'
      const r = await this.db
        .updateTable('outbox')
        .set({ status: 'uncertain', last_error: message, claimed_by: null, claim_until: null })
        .where('id', '=', s.id)
        .where('status', '=', 'sending')
        .where('claim_until', '<', now)
        .executeTakeFirst()
      if (Number(r.numUpdatedRows) !== 1) continue
      n++
      if (s.message_id) await this.db.updateTable('messages').set({ delivery_error: message }).where('id', '=', s.message_id).execute()
      this.deps.metrics?.outboxSent.inc({ result: 'uncertain' })
      this.deps.logger.warn({ outboxId: s.id }, 'outbox item found in sending with an expired claim: marked uncertain, not resent')
    }
    return n
  }

  /** Items that waited for Reconnect go back to the queue once their server's credential is connected. */
  async releaseAuthorized(): Promise<number> {
    const r = await this.db
      .updateTable('outbox')
      .set({ status: 'queued', next_attempt_at: this.now() })
      .where('status', '=', 'waiting_authorization')
      .where('server_id', 'in', (eb) =>
        eb
          .selectFrom('email_servers')
          .innerJoin('credentials', 'credentials.id', 'email_servers.credential_id')
          .select('email_servers.id')
          .where('credentials.status', '=', 'connected')
          .where('email_servers.enabled', '=', 1),
      )
      .executeTakeFirst()
    const n = Number(r.numUpdatedRows)
    if (n > 0) this.deps.logger.info({ items: n }, 'authorization is back: waiting outgoing mail queued again')
    return n
  }

  /**
   * Claims due items: `FOR UPDATE SKIP LOCKED` where the database has it (PostgreSQL, several
   * workers), and on SQLite the same conditional UPDATE, atomic because SQLite has one writer.
   * The attempt is recorded (attempts, attempt_started_at, claim) before anything is sent.
   */
  async claimDue(limit: number): Promise<OutboxItem[]> {
    const now = this.now()
    return this.db
      .updateTable('outbox')
      .set((eb) => ({ ...this.claim(now), attempts: eb('attempts', '+', 1) }))
      .where('id', 'in', (eb) => {
        let sub = eb.selectFrom('outbox').select('id').where('status', '=', 'queued').where('next_attempt_at', '<=', now).orderBy('next_attempt_at').limit(limit)
        if (this.deps.caps.skipLocked) sub = sub.forUpdate().skipLocked()
        return sub
      })
      .where('status', '=', 'queued')
      .returningAll()
      .execute()
  }

  /** The columns of a claim: the attempt is recorded before anything is sent. */
  private claim(now: number) {
    return { status: 'sending' as const, claimed_by: this.owner, claim_until: now + CLAIM_MS, attempt_started_at: now }
  }

  private async deliverClaimed(item: OutboxItem): Promise<void> {
    const log = this.deps.logger.child({ outboxId: item.id, serverId: item.server_id })
    const server = item.server_id ? await this.db.selectFrom('email_servers').selectAll().where('id', '=', item.server_id).executeTakeFirst() : undefined
    if (!server) {
      const message = 'The outgoing server of this message was deleted: send the reply again from the request.'
      return this.settle(item, { verdict: 'failed', code: 'outbox_server_missing', message })
    }
    if (!server.enabled) {
      const message = `The outgoing server "${server.name}" is disabled: enable it, then use Send again.`
      return this.settle(item, { verdict: 'failed', code: 'outbox_server_disabled', message })
    }
    let refreshedOnce = false
    for (;;) {
      let failure: DeliveryFailure
      try {
        const login = await this.deps.emailServers.login(server)
        const result = await this.#delivery.send(server, login, item, () => void this.extendClaim(item.id))
        if (result.ok) return this.markSent(item, server, result.response)
        failure = result.failure
      } catch (err) {
        failure = classifyDeliveryError(err, { host: server.host, port: server.port, dataHandedOver: false, oauth: server.auth_type === 'oauth2' })
      }
      if (failure.verdict === 'auth_rejected') {
        this.#delivery.retire(server.id)
        if (!refreshedOnce && server.credential_id) {
          // The stored token may have been revoked while it still looked valid: refresh it once.
          // A refused refresh (invalid_grant) marks the credential for Reconnect.
          refreshedOnce = true
          try {
            await this.deps.credentials.refresh(server.credential_id)
            log.info('access token refused by the SMTP server; refreshed it and trying again')
            continue
          } catch (err) {
            failure = classifyDeliveryError(err, { host: server.host, port: server.port, dataHandedOver: false, oauth: true })
          }
        } else {
          failure = {
            ...failure,
            verdict: 'failed',
            message:
              `${failure.message} A freshly refreshed token was refused too, so the account, the granted scope ` +
              '(Google: https://mail.google.com/; Microsoft: SMTP.Send) or the mailbox permissions do not match this server: ' +
              'check them, click Reconnect, then use Send again.',
          }
        }
      }
      return this.settle(item, failure, server)
    }
  }

  private async extendClaim(id: number): Promise<void> {
    await this.db
      .updateTable('outbox')
      .set({ claim_until: this.now() + CLAIM_MS })
      .where('id', '=', id)
      .where('claimed_by', '=', this.owner)
      .where('status', '=', 'sending')
      .execute()
      .catch((err) => this.deps.logger.warn({ outboxId: id, err: { message: (err as Error).message } }, 'could not extend the outbox claim'))
  }

  private async markSent(item: OutboxItem, server: EmailServer, response: string): Promise<void> {
    const now = this.now()
    const updated = await this.db.transaction().execute(async (trx) => {
      // 'uncertain' too: if our claim ran out while the server was still answering, the "250" we
      // now hold is the truth.
      const r = await trx
        .updateTable('outbox')
        .set({ status: 'sent', smtp_response: response.slice(0, 1000), sent_at: now, last_error: null, claimed_by: null, claim_until: null })
        .where('id', '=', item.id)
        .where('status', 'in', ['sending', 'uncertain'])
        .where((eb) => eb.or([eb('claimed_by', '=', this.owner), eb('claimed_by', 'is', null)]))
        .executeTakeFirst()
      if (Number(r.numUpdatedRows) === 1 && item.message_id) {
        await trx.updateTable('messages').set({ delivery_status: 'sent', delivery_error: null }).where('id', '=', item.message_id).execute()
      }
      return Number(r.numUpdatedRows) === 1
    })
    this.deps.metrics?.outboxSent.inc({ result: 'sent' })
    this.deps.logger.info(
      { outboxId: item.id, serverId: server.id, kind: item.kind, attempts: item.attempts },
      updated ? 'outgoing mail sent' : 'outgoing mail sent, but its row changed meanwhile',
    )
    if (server.status !== 'connected') {
      await this.deps.emailServers.recordStatus(server.id, { ok: true, message: `Connected: mail was sent through ${server.host}.` }).catch(() => {})
    }
  }

  /** Applies the verdict of a failed attempt to the claimed item (and its message row). */
  private async settle(item: OutboxItem, failure: DeliveryFailure, server?: EmailServer): Promise<void> {
    const now = this.now()
    let status: OutboxStatus
    let nextAttemptAt = item.next_attempt_at
    let message = failure.message
    switch (failure.verdict) {
      case 'retry':
        if (item.kind === 'test') {
          // The admin is waiting for an answer now, not for a retry in a few minutes.
          status = 'failed'
        } else if (item.attempts >= MAX_ATTEMPTS) {
          status = 'failed'
          message = `Gave up after ${item.attempts} attempts with temporary failures. Last one: ${failure.message}`
        } else {
          status = 'queued'
          nextAttemptAt = now + backoffDelay(item.attempts, { baseMs: 10_000, capMs: 30 * 60_000 })
        }
        break
      case 'waiting_authorization':
        status = 'waiting_authorization'
        break
      case 'uncertain':
        status = 'uncertain'
        break
      default:
        status = 'failed'
    }
    await this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('outbox')
        .set({
          status,
          next_attempt_at: nextAttemptAt,
          last_error: message.slice(0, 2000),
          smtp_response: failure.serverResponse ?? null,
          claimed_by: null,
          claim_until: null,
        })
        .where('id', '=', item.id)
        .where('claimed_by', '=', this.owner)
        .where('status', '=', 'sending')
        .executeTakeFirst()
      if (Number(r.numUpdatedRows) === 1 && item.message_id) {
        await trx
          .updateTable('messages')
          .set({ delivery_status: status === 'failed' ? 'failed' : 'queued', delivery_error: message.slice(0, 2000) })
          .where('id', '=', item.message_id)
          .execute()
      }
    })
    const result = status === 'queued' ? 'retry' : status
    this.deps.metrics?.outboxSent.inc({ result })
    this.deps.logger.warn({ outboxId: item.id, serverId: item.server_id, code: failure.code, status, attempts: item.attempts }, 'outgoing mail not sent')
    if (!server) return
    // What the admin sees on the Outgoing Email Servers tab: configuration and sign-in problems,
    // not a single recipient refused by the server.
    if (failure.verdict === 'waiting_authorization') await this.deps.emailServers.refreshStatusFromCredential(server.id).catch(() => {})
    else if (failure.code !== 'smtp_rejected' && failure.code !== 'smtp_outcome_unknown') {
      await this.deps.emailServers
        .recordStatus(server.id, { ok: false, message: failure.message, code: failure.code, transient: failure.verdict === 'retry' })
        .catch(() => {})
    }
  }
}

function summarize(r: {
  id: number
  kind: OutboxItem['kind']
  status: OutboxStatus
  message_id: number | null
  request_id: number | null
  server_id: number | null
  envelope_to: string
  message_id_header: string
  attempts: number
  last_error: string | null
  smtp_response: string | null
  next_attempt_at: number
  created_at: number
  sent_at: number | null
  server_name: string | null
}): OutboxSummary {
  return {
    id: r.id,
    kind: r.kind,
    status: r.status,
    statusLabel: r.status === 'queued' && r.last_error ? 'Retrying' : outboxStatusLabels[r.status],
    messageRowId: r.message_id,
    requestId: r.request_id,
    serverId: r.server_id,
    serverName: r.server_name,
    to: r.envelope_to.split(',').filter(Boolean),
    messageIdHeader: r.message_id_header,
    attempts: r.attempts,
    lastError: r.last_error,
    smtpResponse: r.smtp_response,
    nextAttemptAt: r.status === 'queued' ? r.next_attempt_at : null,
    createdAt: r.created_at,
    sentAt: r.sent_at,
    canSendAgain: r.status === 'failed' || r.status === 'uncertain',
  }
}

/** A new outbox row, due now: the finished MIME message and its envelope. */
function queuedRow(r: {
  kind: 'reply' | 'auto_ack' | 'test'
  messageRowId: number | null
  requestId: number | null
  serverId: number
  composed: { envelope: { from: string; to: string[] }; raw: Buffer }
  messageIdHeader: string
  now: number
}) {
  return {
    kind: r.kind,
    message_id: r.messageRowId,
    request_id: r.requestId,
    server_id: r.serverId,
    status: 'queued' as const,
    envelope_from: r.composed.envelope.from,
    envelope_to: r.composed.envelope.to.join(','),
    message_id_header: r.messageIdHeader,
    raw: r.composed.raw,
    next_attempt_at: r.now,
    created_at: r.now,
  }
}
