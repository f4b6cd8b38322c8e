import { createHash } from 'node:crypto'
import type { Insertable, Kysely, Transaction } from 'kysely'
import { createParserPool } from '../mail/mime/parser-pool.ts'
import type { ParserPool, ParserPoolOptions } from '../mail/mime/parser-pool.ts'
import { prepareSafeHtml, resolveCidPlaceholders } from '../mail/mime/safe-html.ts'
import type { ParsedMail, SafeHtml } from '../mail/mime/types.ts'
import { AppError, isAppError } from '../shared/errors.ts'
import type { Logger } from '../shared/logger.ts'
import type { Metrics } from '../shared/metrics.ts'
import type { Storage } from '../storage/database.ts'
import type {
  AttachmentsTable,
  Database,
  EmailServer,
  MessagesTable,
  RequestsTable,
} from '../storage/schema.ts'
import { formatAddressList } from '../requests/addresses.ts'
import { attachmentUrl } from '../requests/downloads.ts'
import { RequestRepository, dbText } from '../requests/repository.ts'
import { formatMessageFlags } from '../requests/types.ts'
import type { MessageFlag } from '../requests/types.ts'
import { sanitizeAttachmentName } from './attachment-names.ts'
import { createContext, ingestDecision } from './context.ts'
import type { IngestContext, IngestDecision, IngestFilter, IngestMailbox } from './context.ts'
import { ingestFilters, runIngestFilters, subjectRequestNumber } from './filters/index.ts'
import { BatchLookups, LookupFailure } from './lookups.ts'

export interface RawMessage {
  /** Where the message came from, unique per server: `imap:<uidvalidity>:<uid>` or `pop3:<uidl>`. */
  sourceKey: string
  raw: Buffer
}

export type IngestOutcome = 'new_request' | 'reply' | 'ignored' | 'quarantined' | 'duplicate'

export interface IngestOutcomeRow {
  sourceKey: string
  /** The Email Audit row; for a duplicate, the row of the message it duplicates. */
  inboundMailId: number
  outcome: IngestOutcome
  requestId?: number
  requestNumber?: number
  reason?: string
}

export interface BatchHooks {
  /**
   * Runs inside the batch's transaction, after the messages are written and before commit: the
   * cursor advance (IMAP last UID / POP3 UIDL rows) and the lease-epoch guard. Throwing rolls the
   * batch back.
   */
  beforeCommit?(trx: Transaction<Database>): Promise<void>
}

export interface NewRequestEvent {
  server: EmailServer
  requestId: number
  requestNumber: number
  subject: string
  /** The sender; address '' when the mail had none (then `suppressAutomaticMail` is true). */
  requester: { address: string; name: string }
  /** Message-ID of the mail, without angle brackets. */
  inboundMessageId: string | undefined
  /** Bulk, list, automatic or address-less mail: send it nothing automatically. */
  suppressAutomaticMail: boolean
}

export type NewRequestListener = (trx: Transaction<Database>, event: NewRequestEvent) => Promise<void>

export interface IngestPipelineOptions {
  storage: Storage
  logger: Logger
  metrics: Metrics
  /** The right-hand side of our own Message-IDs (`config.messageIdDomain`): mail carrying one is a loop. */
  messageIdDomain: string
  /** A parser pool to use (not closed by `close()`); by default the pipeline starts its own on first use. */
  parser?: ParserPool
  /** Options of the pool the pipeline starts itself. */
  parserOptions?: ParserPoolOptions
  /** The filter chain; default `ingestFilters`. */
  filters?: readonly IngestFilter[]
  clock?: () => number
}

/** The longest reason kept in the Email Audit. */
const maxReasonLength = 500

interface Prepared {
  mail: ParsedMail
  /** Sanitized HTML whose `cid:` images point at placeholder URLs until the attachment ids are known. */
  safeHtml?: SafeHtml
}

interface Item {
  index: number
  sourceKey: string
  raw: Buffer
  hash: string
  /** The audit row it duplicates (stored earlier), or the earlier item of this batch it repeats. */
  duplicateOf?: number
  duplicateOfItem?: Item
  /** Set when re-processing a stored message: its audit row is updated instead of inserted. */
  existingInboundId?: number
  prepared?: Prepared
  /** Why it could not be parsed or prepared. */
  failure?: string
  /** Filled while planning. */
  inboundId?: number
}

interface Plan {
  item: Item
  outcome: Exclude<IngestOutcome, 'duplicate'>
  reason: string | null
  requestId: number | null
  requestNumber?: number
  messageRowId: number | null
  mail?: ParsedMail
  newRequest?: {
    row: Omit<Insertable<RequestsTable>, 'number' | 'requester_id'>
    requester?: { email: string; address: string; name: string }
    suppressAutomaticMail: boolean
    number?: number
  }
  message?: Insertable<MessagesTable>
  attachments: Insertable<AttachmentsTable>[]
  /** Existing request that gets a message; `reopen` when a person (not a robot) wrote. */
  touch?: { requestId: number; reopen: boolean }
  bounced?: { messageRowId: number; error: string }
}

function sha256(raw: Buffer): string {
  return createHash('sha256').update(raw).digest('hex')
}

function clip(reason: string): string {
  const clean = reason.replace(/[\r\n\p{Cc}]+/gu, ' ').trim()
  return clean.length > maxReasonLength ? `${clean.slice(0, maxReasonLength - 1)}…` : clean
}

function errorReason(err: unknown): string {
  if (isAppError(err)) return err.message
  return `processing failed: ${(err as Error)?.message ?? String(err)}`
}

/** Hands out reserved ids in order; running out means the reservation was wrong (a bug). */
class IdPool {
  private next = 0
  constructor(
    private readonly ids: number[],
    private readonly table: string,
  ) {}
  take(): number {
    const id = this.ids[this.next++]
    if (id === undefined) throw new AppError('ingest_id_pool_exhausted', `no reserved ${this.table} id left`)
    return id
  }
  /** Takes `n` ids at once, so that a failure half-way leaves nothing inconsistent. */
  takeMany(n: number): number[] {
    const out: number[] = []
    for (let i = 0; i < n; i++) out.push(this.take())
    return out
  }
}

/**
 * Mail becomes requests: raw messages in, Email Audit rows, requests, messages, contacts and
 * attachments out, one transaction per batch (DESIGN.md "Ingestion must be exactly-once").
 *
 * Per batch: parse every message on the parser pool (both cores) while sanitizing the HTML of
 * the ones already parsed on this thread; then, in one transaction, check for replays, run the
 * filter chain message by message in input order (planning every row in memory, with reserved
 * ids), and write each table with a few multi-row INSERTs. A message whose parsing or planning
 * fails is quarantined and the batch goes on; nothing is half-written because nothing is written
 * before planning ends (no savepoints needed, on either database). Only a database error, a
 * listener's or a hook's error fails the whole batch, which the caller retries.
 */
export class IngestPipeline {
  private readonly db: Kysely<Database>
  private readonly repo: RequestRepository
  private readonly logger: Logger
  private readonly metrics: Metrics
  private readonly filters: readonly IngestFilter[]
  private readonly clock: () => number
  private readonly listeners: NewRequestListener[] = []
  /** Per server, the latest batch in call order (see `takeTurn`). */
  private readonly lastBatch = new Map<number, Promise<void>>()
  private pool: ParserPool | undefined
  private readonly ownsPool: boolean
  private closed = false

  constructor(private readonly options: IngestPipelineOptions) {
    this.db = options.storage.db
    this.repo = new RequestRepository(options.storage.db, options.storage.caps)
    this.logger = options.logger
    this.metrics = options.metrics
    this.filters = options.filters ?? ingestFilters
    this.clock = options.clock ?? Date.now
    this.pool = options.parser
    this.ownsPool = options.parser === undefined
  }

  /**
   * Listeners called inside the transaction when a new request is created (the outbox's
   * auto-acknowledgement), after the batch's rows are written, in input order. A listener that
   * throws rolls the whole batch back (the caller retries it): it must not throw for one bad mail.
   */
  onNewRequest(listener: NewRequestListener): void {
    this.listeners.push(listener)
  }

  /**
   * Starts the parser pool if it is not running yet. Workers take a few hundred milliseconds to
   * load the parser; a mailbox session calls this before it connects, so that they are ready by
   * the time the first batch has been fetched. Idempotent.
   */
  warmUp(): void {
    if (!this.closed) this.parser()
  }

  /** Parses one raw message on the pool (for re-rendering a stored message). */
  parse(raw: Uint8Array): Promise<ParsedMail> {
    return this.parser().parse(raw)
  }

  /**
   * Parses the messages off the main thread (parser pool, both cores), runs the filter chain, and
   * writes the raw mail, the Email Audit rows (`inbound_mail`), contacts, requests/messages/
   * attachments and the hooks' cursor writes in ONE transaction. A message that cannot be parsed
   * or processed is stored as quarantined with its reason (never dropped, never throws for one
   * bad mail). A replayed sourceKey or an identical message already ingested (same raw hash on
   * this server, which also covers a resync after a UIDVALIDITY change) gives outcome
   * 'duplicate' and creates nothing. Returns one outcome per input, in order.
   *
   * Throws (and writes nothing) on a database error, when a hook or a new-request listener
   * throws, and when the parser pool is unavailable (`parser_unavailable`, transient).
   *
   * Batches of one server commit in call order, so a caller may hand over batch k+1 before
   * batch k has committed (its messages are parsed meanwhile, which keeps the cores busy while
   * the database writes). When batch k fails, every batch of that server called before k
   * settled fails too, with `ingest_batch_aborted` (transient), without writing: a cursor can
   * never move past messages that were not committed.
   */
  async ingestBatch(server: EmailServer, messages: RawMessage[], hooks: BatchHooks = {}): Promise<IngestOutcomeRow[]> {
    this.assertOpen()
    const turn = this.takeTurn(server.id)
    let committed = false
    try {
      const outcomes = await this.runBatch(server, messages, hooks, turn.previous)
      committed = true
      return outcomes
    } finally {
      turn.settle(committed)
    }
  }

  private async runBatch(
    server: EmailServer,
    messages: RawMessage[],
    hooks: BatchHooks,
    previous: Promise<void>,
  ): Promise<IngestOutcomeRow[]> {
    const started = process.hrtime.bigint()
    const items: Item[] = messages.map((m, index) => ({ index, sourceKey: m.sourceKey, raw: m.raw, hash: sha256(m.raw) }))

    // Replays are recognised before parsing (a resync re-reads thousands of known messages);
    // the check is repeated inside the transaction, which is the one that counts.
    this.markBatchDuplicates(items)
    const fresh = pending(items)
    markKnown(items, await this.repo.findInbound(this.db, server.id, fresh.map((i) => i.sourceKey), fresh.map((i) => i.hash)))
    await this.prepareAll(pending(items))
    const ownAddresses = await this.repo.ownAddresses()
    try {
      await previous
    } catch {
      throw new AppError('ingest_batch_aborted', 'an earlier batch of this mailbox failed, so this one was not written', {
        transient: true,
      })
    }

    const plans = await this.db.transaction().execute(async (trx) => {
      const open = pending(items)
      markKnown(items, await this.repo.findInbound(trx, server.id, open.map((i) => i.sourceKey), open.map((i) => i.hash)))
      const planned = await this.planAndWrite(trx, server, pending(items), ownAddresses)
      await hooks.beforeCommit?.(trx)
      return planned
    })

    const outcomes = items.map((item) => this.outcomeRow(item, plans.get(item)))
    this.afterCommit(server, outcomes, started)
    return outcomes
  }

  /** Re-runs a quarantined message from its stored raw mail (after a fix, or a raised limit). */
  async reprocess(inboundMailId: number): Promise<IngestOutcomeRow> {
    this.assertOpen()
    const started = process.hrtime.bigint()
    const row = await this.repo.inboundMail(inboundMailId)
    if (!row) throw new AppError('inbound_mail_not_found', 'This message is not in the Email Audit.')
    if (row.outcome !== 'quarantined') {
      throw new AppError('not_quarantined', 'This message is not quarantined (it was re-processed already).')
    }
    const server = await this.db.selectFrom('email_servers').selectAll().where('id', '=', row.server_id).executeTakeFirst()
    if (!server) throw new AppError('server_not_found', 'The email server of this message was deleted.')
    const raw = await this.repo.rawMail(row.raw_hash)
    if (!raw) throw new AppError('raw_mail_not_found', 'The raw mail of this message is no longer stored.')
    const item: Item = { index: 0, sourceKey: row.source_key, raw, hash: row.raw_hash, existingInboundId: row.id }
    await this.prepareAll([item])
    const ownAddresses = await this.repo.ownAddresses()
    const plans = await this.db.transaction().execute((trx) => this.planAndWrite(trx, server, [item], ownAddresses))
    const outcome = this.outcomeRow(item, plans.get(item))
    this.afterCommit(server, [outcome], started)
    return outcome
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.ownsPool) await this.pool?.close()
    this.pool = undefined
  }

  // ---- stages -----------------------------------------------------------------------------------

  /**
   * A place in the server's commit order: `previous` settles when the batch called before this
   * one has committed (resolves) or failed (rejects). A batch called after the whole chain has
   * settled starts afresh, so the caller's retry after a failure is not failed in turn.
   */
  private takeTurn(serverId: number): { previous: Promise<void>; settle(committed: boolean): void } {
    const previous = this.lastBatch.get(serverId) ?? Promise.resolve()
    let settle!: (committed: boolean) => void
    const mine = new Promise<void>((resolve, reject) => {
      settle = (committed) => (committed ? resolve() : reject(new Error('batch failed')))
    })
    this.lastBatch.set(serverId, mine)
    const forget = () => {
      if (this.lastBatch.get(serverId) === mine) this.lastBatch.delete(serverId)
    }
    mine.then(forget, forget)
    return { previous, settle }
  }

  private assertOpen(): void {
    if (this.closed) throw new AppError('ingest_closed', 'the ingest pipeline is closed', { transient: true })
  }

  private parser(): ParserPool {
    this.assertOpen()
    this.pool ??= createParserPool(this.options.parserOptions)
    return this.pool
  }

  /** The same source key or the same bytes twice in one batch: the later one is a duplicate. */
  private markBatchDuplicates(items: Item[]): void {
    const byKey = new Map<string, Item>()
    const byHash = new Map<string, Item>()
    for (const item of items) {
      const earlier = byKey.get(item.sourceKey) ?? byHash.get(item.hash)
      if (earlier) {
        item.duplicateOfItem = earlier
        continue
      }
      byKey.set(item.sourceKey, item)
      byHash.set(item.hash, item)
    }
  }

  /**
   * Parses and sanitizes on the pool (both cores; this thread keeps the IMAP connection and the
   * database). A transient pool failure fails the batch (the mail is fine; the machine is not);
   * anything else about one message quarantines that message.
   */
  private async prepareAll(items: Item[]): Promise<void> {
    if (items.length === 0) return
    const pool = this.parser()
    let transient: AppError | undefined
    await Promise.all(
      items.map(async (item) => {
        let mail: ParsedMail
        try {
          mail = await pool.parse(item.raw, { sanitizeHtml: true })
        } catch (err) {
          if (isAppError(err) && err.transient) transient ??= err
          else item.failure = errorReason(err)
          return
        }
        try {
          // A pool passed in by the caller may not sanitize: then it happens here.
          const safeHtml = mail.safeHtml ?? prepareSafeHtml(mail)
          item.prepared = safeHtml === undefined ? { mail } : { mail, safeHtml }
        } catch (err) {
          item.failure = `the HTML body cannot be sanitized: ${(err as Error)?.message ?? String(err)}`
        }
      }),
    )
    if (transient) throw transient
  }

  /**
   * Plans every message of the batch in input order (filters, rows, ids) and writes the rows,
   * inside `trx`. Returns the plan of each item that is not a duplicate.
   */
  private async planAndWrite(
    trx: Transaction<Database>,
    server: EmailServer,
    items: Item[],
    ownAddresses: string[],
  ): Promise<Map<Item, Plan>> {
    const plans = new Map<Item, Plan>()
    if (items.length === 0) return plans
    const now = this.clock()
    const parsed = items.filter((i) => i.prepared)
    const attachmentCount = parsed.reduce((n, i) => n + i.prepared!.mail.attachments.length, 0)
    const fresh = items.filter((i) => i.existingInboundId === undefined)
    const inboundIds = new IdPool(await this.repo.reserveIds(trx, 'inbound_mail', fresh.length), 'inbound_mail')
    const requestIds = new IdPool(await this.repo.reserveIds(trx, 'requests', parsed.length), 'requests')
    const messageIds = new IdPool(await this.repo.reserveIds(trx, 'messages', parsed.length), 'messages')
    const attachmentIds = new IdPool(await this.repo.reserveIds(trx, 'attachments', attachmentCount), 'attachments')

    const lookups = new BatchLookups(trx)
    const ids: string[] = []
    const numbers: number[] = []
    for (const { prepared } of parsed) {
      const mail = prepared!.mail
      ids.push(...mail.references, ...mail.inReplyTo)
      if (mail.report?.originalMessageId) ids.push(mail.report.originalMessageId)
      const n = subjectRequestNumber(mail.subject)
      if (n !== undefined) numbers.push(n)
    }
    await lookups.prefetch(ids, numbers)

    const mailbox: IngestMailbox = {
      id: server.id,
      emailAddress: server.email_address,
      ownAddresses,
      ownMessageIdDomain: this.options.messageIdDomain,
    }
    for (const item of items) {
      item.inboundId = item.existingInboundId ?? inboundIds.take()
      let plan: Plan
      if (!item.prepared) {
        plan = quarantine(item, item.failure ?? 'the message could not be parsed')
      } else {
        try {
          const ctx = createContext({ mail: item.prepared.mail, mailbox, lookups })
          await runIngestFilters(ctx, this.filters)
          plan = this.plan(item, ctx, ingestDecision(ctx), server, now, { requestIds, messageIds, attachmentIds })
        } catch (err) {
          if (err instanceof LookupFailure) throw err.cause ?? err
          plan = quarantine(item, errorReason(err))
        }
        if (plan.message && plan.requestId !== null && plan.messageRowId !== null) {
          const match = { requestId: plan.requestId, messageRowId: plan.messageRowId, direction: 'inbound' as const }
          lookups.rememberPlanned(item.prepared.mail.messageId, match)
        }
      }
      plans.set(item, plan)
    }

    // Numbers last, so that a quarantined message leaves no gap. The counter row is the first
    // lock this transaction takes (see allocateRequestNumbers).
    const created = [...plans.values()].filter((p) => p.newRequest)
    if (created.length > 0) {
      const first = await this.repo.allocateRequestNumbers(trx, created.length)
      created.forEach((p, i) => {
        p.newRequest!.number = first + i
        lookups.rememberNumber(p.requestId!, first + i)
      })
    }
    await this.write(trx, server, [...plans.values()], now)
    for (const p of created) {
      const event: NewRequestEvent = {
        server,
        requestId: p.requestId!,
        requestNumber: p.newRequest!.number!,
        subject: p.newRequest!.row.subject,
        requester: p.newRequest!.requester
          ? { address: p.newRequest!.requester.address, name: p.newRequest!.requester.name }
          : { address: '', name: '' },
        inboundMessageId: p.mail?.messageId,
        suppressAutomaticMail: p.newRequest!.suppressAutomaticMail,
      }
      for (const listener of this.listeners) await listener(trx, event)
    }
    // Outcome rows name the request by its number, for new and existing requests alike.
    for (const plan of plans.values()) {
      if (plan.requestId !== null) plan.requestNumber = plan.newRequest?.number ?? lookups.requestNumber(plan.requestId)
    }
    return plans
  }

  /** Turns the filters' decision into rows, with reserved ids. Throws only for a bad mail. */
  private plan(
    item: Item,
    ctx: IngestContext,
    decision: IngestDecision,
    server: EmailServer,
    now: number,
    pools: { requestIds: IdPool; messageIds: IdPool; attachmentIds: IdPool },
  ): Plan {
    const mail = item.prepared!.mail
    if (decision.kind !== 'new-request' && decision.kind !== 'add-to-request') {
      return { item, outcome: decision.kind, reason: clip(decision.reason), requestId: null, messageRowId: null, mail, attachments: [] }
    }
    const flags: MessageFlag[] = []
    if (ctx.flags.autoReply) flags.push('auto-reply')
    if (ctx.flags.bounce) flags.push('bounce')
    if (ctx.flags.bulk) flags.push('bulk')
    const facts = [...Object.values(ctx.flags).filter((v): v is string => Boolean(v)), ...ctx.notes]

    const requestId = decision.kind === 'new-request' ? pools.requestIds.take() : decision.requestId
    const messageRowId = pools.messageIds.take()
    const attachmentRowIds = pools.attachmentIds.takeMany(mail.attachments.length)
    const url = (i: number) => attachmentUrl(requestId, attachmentRowIds[i]!)
    const safeHtml = item.prepared!.safeHtml
    const html = safeHtml === undefined ? null : resolveCidPlaceholders(safeHtml, url)

    const message: Insertable<MessagesTable> = {
      id: messageRowId,
      request_id: requestId,
      direction: 'inbound',
      inbound_mail_id: item.inboundId!,
      message_id_header: mail.messageId ?? null,
      in_reply_to: dbText(mail.inReplyTo.join(' ')) || null,
      // As the outbox stores them: In-Reply-To ids bare, References in header form (`<a> <b>`).
      references_header: dbText(mail.references.map((id) => `<${id}>`).join(' ')) || null,
      from_address: dbText(mail.from?.address) ?? null,
      from_name: dbText(mail.from?.name) || null,
      to_addresses: dbText(formatAddressList(mail.to)) || null,
      cc_addresses: dbText(formatAddressList(mail.cc)) || null,
      subject: dbText(mail.subject) || null,
      text_body: dbText(mail.text) ?? null,
      html_body: dbText(html),
      remote_images: safeHtml?.blockedRemoteImages ?? 0,
      flags: formatMessageFlags(flags),
      author_user_id: null,
      delivery_status: 'received',
      delivery_error: null,
      created_at: now,
    }
    const attachments: Insertable<AttachmentsTable>[] = mail.attachments.map((a, i) => ({
      id: attachmentRowIds[i],
      message_id: messageRowId,
      filename: sanitizeAttachmentName(a.filename),
      content_type: a.contentType,
      size: a.content.byteLength,
      content_id: dbText(a.contentId) ?? null,
      inline: a.inline ? 1 : 0,
      sha256: a.sha256,
      content: Buffer.from(a.content.buffer, a.content.byteOffset, a.content.byteLength),
    }))

    if (decision.kind === 'new-request') {
      const sender = mail.from ?? mail.replyTo[0]
      const subject = dbText(mail.subject.replace(/\p{Cc}+/gu, ' ').trim()).slice(0, 998) || '(no subject)'
      return {
        item,
        outcome: 'new_request',
        reason: facts.length ? clip(facts.join('; ')) : null,
        requestId,
        messageRowId,
        mail,
        newRequest: {
          row: {
            id: requestId,
            subject,
            server_id: server.id,
            status: 'open',
            is_bulk: ctx.flags.bulk ? 1 : 0,
            created_at: now,
            last_activity_at: now,
          },
          requester: sender ? { email: sender.address.trim().toLowerCase(), address: sender.address.trim(), name: sender.name } : undefined,
          suppressAutomaticMail: ctx.suppressAutomaticMail || !sender,
        },
        message,
        attachments,
      }
    }
    const human = !ctx.flags.autoReply && !ctx.flags.bounce
    const bounced =
      ctx.flags.bounce && decision.outboundMessageId !== undefined
        ? { messageRowId: decision.outboundMessageId, error: bounceError(mail, ctx.flags.bounce) }
        : undefined
    return {
      item,
      outcome: 'reply',
      reason: clip([`matched by ${decision.matchedBy}`, ...facts].join('; ')),
      requestId,
      messageRowId,
      mail,
      message,
      attachments,
      touch: { requestId, reopen: human },
      ...(bounced ? { bounced } : {}),
    }
  }

  /** Writes the planned rows, table by table, in a fixed order (the same lock order in every writer). */
  private async write(trx: Transaction<Database>, server: EmailServer, plans: Plan[], now: number): Promise<void> {
    const requesters = plans.flatMap((p) => {
      const requester = p.newRequest?.requester
      return requester ? [{ email: requester.email, name: requester.name || null }] : []
    })
    const contactIds = requesters.length ? await this.repo.upsertContacts(trx, requesters, now) : new Map<string, number>()

    const fresh = plans.filter((p) => p.item.existingInboundId === undefined)
    await this.repo.insertRawMail(
      trx,
      fresh.map((p) => ({ hash: p.item.hash, size: p.item.raw.length, content: p.item.raw, created_at: now })),
    )
    // What the Email Audit says about a message (its row, or the update of a re-processed one).
    const audit = (p: Plan) => ({
      message_id_header: p.mail?.messageId ?? null,
      sender: dbText(p.mail?.from?.address ?? p.mail?.replyTo[0]?.address) ?? null,
      subject: p.mail ? dbText(p.mail.subject).slice(0, 998) : null,
      outcome: p.outcome,
      outcome_reason: p.reason === null ? null : dbText(p.reason),
      request_id: p.message ? p.requestId : null,
      message_id: p.message ? p.messageRowId : null,
      processed_at: now,
    })
    await this.repo.insertInboundMail(
      trx,
      fresh.map((p) => ({
        id: p.item.inboundId!,
        server_id: server.id,
        source_key: dbText(p.item.sourceKey),
        raw_hash: p.item.hash,
        size: p.item.raw.length,
        received_at: now,
        ...audit(p),
      })),
    )
    for (const p of plans.filter((x) => x.item.existingInboundId !== undefined)) {
      const updated = await this.repo.updateQuarantined(trx, p.item.existingInboundId!, audit(p))
      if (!updated) throw new AppError('not_quarantined', 'This message is not quarantined (it was re-processed already).')
    }

    await this.repo.insertRequests(
      trx,
      plans.flatMap((p) =>
        p.newRequest
          ? [
              {
                ...p.newRequest.row,
                number: p.newRequest.number!,
                requester_id: p.newRequest.requester ? (contactIds.get(p.newRequest.requester.email) ?? null) : null,
              },
            ]
          : [],
      ),
    )
    await this.repo.insertMessages(trx, plans.flatMap((p) => (p.message ? [p.message] : [])))
    await this.repo.insertAttachments(trx, plans.flatMap((p) => p.attachments))
    const touched = plans.flatMap((p) => (p.touch ? [p.touch] : []))
    if (touched.length) {
      await this.repo.touchRequests(
        trx,
        touched.map((t) => t.requestId),
        touched.filter((t) => t.reopen).map((t) => t.requestId),
        now,
      )
    }
    for (const p of plans) if (p.bounced) await this.repo.markBounced(trx, p.bounced.messageRowId, p.bounced.error)
  }

  private outcomeRow(item: Item, plan: Plan | undefined): IngestOutcomeRow {
    if (!plan) {
      const of = item.duplicateOfItem
      const inboundMailId = item.duplicateOf ?? of?.inboundId ?? of?.duplicateOf ?? 0
      return { sourceKey: item.sourceKey, inboundMailId, outcome: 'duplicate' }
    }
    const row: IngestOutcomeRow = { sourceKey: item.sourceKey, inboundMailId: item.inboundId!, outcome: plan.outcome }
    if (plan.message && plan.requestId !== null) {
      row.requestId = plan.requestId
      if (plan.requestNumber !== undefined) row.requestNumber = plan.requestNumber
    }
    if (plan.reason !== null && plan.outcome !== 'new_request' && plan.outcome !== 'reply') row.reason = plan.reason
    return row
  }

  private afterCommit(server: EmailServer, outcomes: IngestOutcomeRow[], started: bigint): void {
    const counts: Record<string, number> = {}
    for (const o of outcomes) {
      counts[o.outcome] = (counts[o.outcome] ?? 0) + 1
      this.metrics.mailIngested.inc({ outcome: o.outcome })
      if (o.outcome === 'quarantined') {
        const fields = { serverId: server.id, inboundMailId: o.inboundMailId, sourceKey: o.sourceKey, reason: o.reason }
        this.logger.warn(fields, 'message quarantined')
      }
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6
    this.logger.debug({ serverId: server.id, messages: outcomes.length, ...counts, ms: Math.round(ms) }, 'ingest batch committed')
  }
}

function pending(items: Item[]): Item[] {
  return items.filter((i) => i.duplicateOf === undefined && i.duplicateOfItem === undefined)
}

function markKnown(items: Item[], known: { bySourceKey: Map<string, number>; byHash: Map<string, number> }): void {
  for (const item of pending(items)) {
    if (item.existingInboundId !== undefined) continue
    const id = known.bySourceKey.get(item.sourceKey) ?? known.byHash.get(item.hash)
    if (id !== undefined) item.duplicateOf = id
  }
}

function quarantine(item: Item, reason: string): Plan {
  return {
    item,
    outcome: 'quarantined',
    reason: clip(reason),
    requestId: null,
    messageRowId: null,
    ...(item.prepared ? { mail: item.prepared.mail } : {}),
    attachments: [],
  }
}

/** What the agent sees on the bounced message: the DSN's diagnostic, else its status (RFC 3464 2.3). */
function bounceError(mail: ParsedMail, reason: string): string {
  const report = mail.report
  if (report?.diagnostic) return report.diagnostic
  if (report?.status) return `delivery failed with status ${report.status}${report.action ? ` (${report.action})` : ''}`
  return reason
}
