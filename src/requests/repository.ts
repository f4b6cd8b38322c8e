import { sql } from 'kysely'
import type { Insertable, Kysely, Selectable } from 'kysely'
import type { StorageCapabilities } from '../storage/dialect.ts'
import type {
  AttachmentsTable,
  Database,
  InboundMailTable,
  MessagesTable,
  RawMailTable,
  RequestsTable,
} from '../storage/schema.ts'
import { parseMessageIdList } from '../mail/mime/message-id.ts'
import { parseMessageFlags } from './types.ts'
import type {
  AttachmentContent,
  AttachmentMeta,
  AuditEntry,
  AuditFilter,
  Page,
  Paging,
  RequestListFilter,
  RequestMessage,
  RequestStatus,
  RequestSummary,
  ServerMailStats,
} from './types.ts'

/** Either the database or a transaction on it: every write helper runs inside the caller's transaction. */
type Db = Kysely<Database>

/** Tables whose ids the ingest pipeline reserves before it writes. */
export type ReservableTable = 'inbound_mail' | 'requests' | 'messages' | 'attachments'

/** Rows per multi-row INSERT: well under both databases' bind-parameter limits (SQLite 32766, PostgreSQL 65535). */
const maxRowsPerInsert = 400
/** Bytes of blob content per INSERT, so one statement never holds a whole mailbox in memory. */
const maxBytesPerInsert = 16 * 1024 * 1024
/** Values per `IN (...)` list. */
const maxInList = 1000

const requestCounterKey = 'requests.last_number'

export function clampPaging(paging: Paging): { page: number; pageSize: number; offset: number } {
  const pageSize = Math.min(200, Math.max(1, Math.floor(paging.pageSize ?? 50)))
  const page = Math.max(1, Math.floor(paging.page ?? 1))
  return { page, pageSize, offset: (page - 1) * pageSize }
}

export function chunk<T>(rows: T[], maxRows: number, sizeOf?: (row: T) => number, maxBytes = maxBytesPerInsert): T[][] {
  const out: T[][] = []
  let current: T[] = []
  let bytes = 0
  for (const row of rows) {
    const size = sizeOf ? sizeOf(row) : 0
    if (current.length > 0 && (current.length >= maxRows || bytes + size > maxBytes)) {
      out.push(current)
      current = []
      bytes = 0
    }
    current.push(row)
    bytes += size
  }
  if (current.length > 0) out.push(current)
  return out
}

/** PostgreSQL refuses NUL in text; mail can carry it. Everything else passes through. */
export function dbText<T extends string | null | undefined>(value: T): T {
  return (typeof value === 'string' && value.includes('\u0000') ? value.replace(/\u0000/g, '') : value) as T
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`)
}

/**
 * Tickets, their messages, contacts, attachments and the Email Audit (`inbound_mail`) in the
 * database. Write helpers take the caller's transaction; reads go to the database.
 */
export class RequestRepository {
  constructor(
    private readonly db: Db,
    private readonly caps: StorageCapabilities,
  ) {}

  // ---- ids and numbers -------------------------------------------------------------------------

  /**
   * `count` fresh ids for rows the caller inserts with explicit ids in the same transaction, so
   * that a batch can be planned completely (request, message and attachment ids, the `cid:` URLs
   * in the HTML) before one multi-row INSERT per table. Unused ids are simply never used.
   * With serial columns the ids come from the column's sequence (safe with any number of
   * writers); with SQLite's integer primary keys the single writer holding the transaction takes
   * the next ones after the highest ever handed out.
   */
  async reserveIds(trx: Db, table: ReservableTable, count: number): Promise<number[]> {
    if (count <= 0) return []
    if (this.caps.types.id === 'serial') {
      const { rows } = await sql<{ id: number }>`
        select nextval(pg_get_serial_sequence(${table}, 'id')) as id from generate_series(1, cast(${count} as integer))
      `.execute(trx)
      return rows.map((r) => Number(r.id)).sort((a, b) => a - b)
    }
    const { rows } = await sql<{ last: number | null }>`
      select max(v) as last from (
        select max(id) as v from ${sql.table(table)}
        union all select seq as v from sqlite_sequence where name = ${table}
      ) as t
    `.execute(trx)
    const start = Number(rows[0]?.last ?? 0) + 1
    return Array.from({ length: count }, (_, i) => start + i)
  }

  /**
   * Takes `count` consecutive request numbers and returns the first. The counter row is locked
   * by the UPDATE until commit, so concurrent workers on PostgreSQL get distinct numbers and the
   * numbers stay gap-free. Callers take it before their other row locks (a fixed lock order).
   */
  async allocateRequestNumbers(trx: Db, count: number): Promise<number> {
    const bump = () =>
      trx
        .updateTable('settings')
        .set({ value: sql<string>`cast(cast(value as integer) + ${count} as text)` })
        .where('key', '=', requestCounterKey)
        .returning('value')
        .executeTakeFirst()
    let row = await bump()
    if (!row) {
      const max = await trx.selectFrom('requests').select((eb) => eb.fn.max('number').as('m')).executeTakeFirst()
      await trx
        .insertInto('settings')
        .values({ key: requestCounterKey, value: String(Number(max?.m ?? 0)) })
        .onConflict((oc) => oc.column('key').doNothing())
        .execute()
      row = await bump()
    }
    return Number(row!.value) - count + 1
  }

  // ---- ingest writes ---------------------------------------------------------------------------

  /** Audit rows of this server already holding one of these source keys or raw hashes. */
  async findInbound(
    db: Db,
    serverId: number,
    sourceKeys: string[],
    hashes: string[],
  ): Promise<{ bySourceKey: Map<string, number>; byHash: Map<string, number> }> {
    const bySourceKey = new Map<string, number>()
    const byHash = new Map<string, number>()
    for (const keys of chunk([...new Set(sourceKeys)], maxInList)) {
      const rows = await db
        .selectFrom('inbound_mail')
        .select(['id', 'source_key'])
        .where('server_id', '=', serverId)
        .where('source_key', 'in', keys)
        .execute()
      for (const r of rows) bySourceKey.set(r.source_key, r.id)
    }
    for (const list of chunk([...new Set(hashes)], maxInList)) {
      const rows = await db
        .selectFrom('inbound_mail')
        .select(['id', 'raw_hash'])
        .where('server_id', '=', serverId)
        .where('raw_hash', 'in', list)
        .orderBy('id')
        .execute()
      for (const r of rows) if (!byHash.has(r.raw_hash)) byHash.set(r.raw_hash, r.id)
    }
    return { bySourceKey, byHash }
  }

  async incomingServerIds(): Promise<number[]> {
    const rows = await this.db.selectFrom('email_servers').select('id').where('direction', '=', 'incoming').orderBy('id').execute()
    return rows.map((r) => r.id)
  }

  /** Every address deskmail sends or receives as (all mailboxes), lower-cased. */
  async ownAddresses(db: Db = this.db): Promise<string[]> {
    const rows = await db.selectFrom('email_servers').select(['email_address', 'from_address']).execute()
    const out = new Set<string>()
    for (const r of rows) {
      for (const a of [r.email_address, r.from_address]) if (a) out.add(a.trim().toLowerCase())
    }
    return [...out]
  }

  /**
   * Contacts by lower-cased address: created when new, the name filled in when it was unknown.
   * Returns address → contact id.
   */
  async upsertContacts(trx: Db, contacts: Array<{ email: string; name: string | null }>, now: number): Promise<Map<string, number>> {
    const unique = new Map<string, string | null>()
    for (const c of contacts) {
      const email = dbText(c.email.trim().toLowerCase())
      if (!unique.has(email) || !unique.get(email)) unique.set(email, dbText(c.name) || null)
    }
    const ids = new Map<string, number>()
    // Sorted: every writer locks contact rows in the same order (no deadlock between workers).
    const rows = [...unique].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    for (const part of chunk(rows, maxRowsPerInsert)) {
      const result = await trx
        .insertInto('contacts')
        .values(part.map(([email, name]) => ({ email, name, created_at: now })))
        .onConflict((oc) => oc.column('email').doUpdateSet({ name: sql`coalesce(contacts.name, excluded.name)` }))
        .returning(['id', 'email'])
        .execute()
      for (const r of result) ids.set(r.email, r.id)
    }
    return ids
  }

  async insertRawMail(trx: Db, rows: Insertable<RawMailTable>[]): Promise<void> {
    const sorted = [...rows].sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0))
    for (const part of chunk(sorted, 100, (r) => r.content.length)) {
      await trx.insertInto('raw_mail').values(part).onConflict((oc) => oc.column('hash').doNothing()).execute()
    }
  }

  async insertInboundMail(trx: Db, rows: Insertable<InboundMailTable>[]): Promise<void> {
    for (const part of chunk(rows, maxRowsPerInsert)) await trx.insertInto('inbound_mail').values(part).execute()
  }

  /**
   * The new outcome of a re-processed message, only while it is still quarantined (two admins
   * pressing Re-process at once: the second changes nothing). Returns whether it was updated.
   */
  async updateQuarantined(
    trx: Db,
    id: number,
    values: Pick<
      InboundMailTable,
      'outcome' | 'outcome_reason' | 'request_id' | 'message_id' | 'processed_at' | 'sender' | 'subject' | 'message_id_header'
    >,
  ): Promise<boolean> {
    const result = await trx
      .updateTable('inbound_mail')
      .set({ ...values, attempts: sql`attempts + 1` })
      .where('id', '=', id)
      .where('outcome', '=', 'quarantined')
      .executeTakeFirst()
    return Number(result.numUpdatedRows) > 0
  }

  async insertRequests(trx: Db, rows: Insertable<RequestsTable>[]): Promise<void> {
    for (const part of chunk(rows, maxRowsPerInsert)) await trx.insertInto('requests').values(part).execute()
  }

  async insertMessages(trx: Db, rows: Insertable<MessagesTable>[]): Promise<void> {
    const size = (r: Insertable<MessagesTable>) => (r.text_body?.length ?? 0) + (r.html_body?.length ?? 0)
    for (const part of chunk(rows, maxRowsPerInsert, size)) await trx.insertInto('messages').values(part).execute()
  }

  async insertAttachments(trx: Db, rows: Insertable<AttachmentsTable>[]): Promise<void> {
    for (const part of chunk(rows, 100, (r) => r.content.length)) await trx.insertInto('attachments').values(part).execute()
  }

  /**
   * New activity on existing requests; `reopen` ones (a person wrote) go back to open when they
   * were waiting for the customer or resolved.
   */
  async touchRequests(trx: Db, ids: number[], reopen: number[], at: number): Promise<void> {
    for (const part of chunk([...new Set(ids)].sort((a, b) => a - b), maxInList)) {
      await trx.updateTable('requests').set({ last_activity_at: at }).where('id', 'in', part).where('last_activity_at', '<', at).execute()
    }
    for (const part of chunk([...new Set(reopen)].sort((a, b) => a - b), maxInList)) {
      await trx
        .updateTable('requests')
        .set({ status: 'open' })
        .where('id', 'in', part)
        .where('status', 'in', ['pending', 'resolved'])
        .execute()
    }
  }

  /** Our outgoing message came back as a bounce (RFC 3464): it was not delivered. */
  async markBounced(trx: Db, messageRowId: number, error: string): Promise<void> {
    await trx
      .updateTable('messages')
      .set({ delivery_status: 'bounced', delivery_error: dbText(error).slice(0, 2000) })
      .where('id', '=', messageRowId)
      .where('direction', '=', 'outbound')
      .execute()
  }

  async inboundMail(id: number, db: Db = this.db) {
    return db.selectFrom('inbound_mail').selectAll().where('id', '=', id).executeTakeFirst()
  }

  async rawMail(hash: string, db: Db = this.db): Promise<Buffer | undefined> {
    const row = await db.selectFrom('raw_mail').select('content').where('hash', '=', hash).executeTakeFirst()
    return row ? Buffer.from(row.content) : undefined
  }

  // ---- reads -----------------------------------------------------------------------------------

  private summaryQuery() {
    return this.db
      .selectFrom('requests')
      .leftJoin('contacts', 'contacts.id', 'requests.requester_id')
      .leftJoin('email_servers', 'email_servers.id', 'requests.server_id')
      .select([
        'requests.id',
        'requests.number',
        'requests.subject',
        'requests.status',
        'requests.is_bulk',
        'requests.server_id',
        'requests.created_at',
        'requests.last_activity_at',
        'requests.requester_id',
        'contacts.email as requester_email',
        'contacts.name as requester_name',
        'email_servers.name as server_name',
      ])
      .select((eb) =>
        eb
          .selectFrom('messages')
          .select((e) => e.fn.countAll<number>().as('n'))
          .whereRef('messages.request_id', '=', 'requests.id')
          .as('message_count'),
      )
  }

  private static toSummary(r: {
    id: number
    number: number
    subject: string
    status: RequestStatus
    is_bulk: number
    server_id: number | null
    created_at: number
    last_activity_at: number
    requester_id: number | null
    requester_email: string | null
    requester_name: string | null
    server_name: string | null
    message_count: number | string | null
  }): RequestSummary {
    return {
      id: r.id,
      number: r.number,
      subject: r.subject,
      status: r.status,
      isBulk: Boolean(r.is_bulk),
      serverId: r.server_id,
      serverName: r.server_name,
      requester:
        r.requester_id !== null && r.requester_email !== null
          ? { id: r.requester_id, email: r.requester_email, name: r.requester_name }
          : null,
      createdAt: Number(r.created_at),
      lastActivityAt: Number(r.last_activity_at),
      messageCount: Number(r.message_count ?? 0),
    }
  }

  async listRequests(filter: RequestListFilter): Promise<Page<RequestSummary>> {
    const { page, pageSize, offset } = clampPaging(filter)
    let base = this.db.selectFrom('requests')
    if (filter.serverId !== undefined) base = base.where('requests.server_id', '=', filter.serverId)
    if (filter.status !== undefined) base = base.where('requests.status', '=', filter.status)
    const total = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
    let q = this.summaryQuery()
    if (filter.serverId !== undefined) q = q.where('requests.server_id', '=', filter.serverId)
    if (filter.status !== undefined) q = q.where('requests.status', '=', filter.status)
    const rows = await q
      .orderBy('requests.last_activity_at', 'desc')
      .orderBy('requests.id', 'desc')
      .limit(pageSize)
      .offset(offset)
      .execute()
    return { items: rows.map(RequestRepository.toSummary), total: Number(total.n), page, pageSize }
  }

  async requestSummary(id: number): Promise<RequestSummary | undefined> {
    const row = await this.summaryQuery().where('requests.id', '=', id).executeTakeFirst()
    return row ? RequestRepository.toSummary(row) : undefined
  }

  async requestIdByNumber(n: number): Promise<number | undefined> {
    const row = await this.db.selectFrom('requests').select('id').where('number', '=', n).executeTakeFirst()
    return row?.id
  }

  async messagesOf(requestId: number): Promise<RequestMessage[]> {
    const rows = await this.db
      .selectFrom('messages')
      .select([
        'id',
        'request_id',
        'direction',
        'inbound_mail_id',
        'message_id_header',
        'in_reply_to',
        'references_header',
        'from_address',
        'from_name',
        'to_addresses',
        'cc_addresses',
        'subject',
        'text_body',
        'remote_images',
        'flags',
        'author_user_id',
        'delivery_status',
        'delivery_error',
        'created_at',
      ])
      .select((eb) => eb.case().when('html_body', 'is', null).then(0).else(1).end().as('has_html'))
      .where('request_id', '=', requestId)
      .orderBy('created_at')
      .orderBy('id')
      .execute()
    const attachments = await this.attachmentsOfMessages(rows.map((r) => r.id))
    const ids = (value: string | null) => parseMessageIdList(value ?? undefined)
    return rows.map((r) => ({
      id: r.id,
      requestId: r.request_id,
      direction: r.direction,
      inboundMailId: r.inbound_mail_id,
      messageIdHeader: r.message_id_header,
      inReplyTo: ids(r.in_reply_to),
      references: ids(r.references_header),
      from: r.from_address ? { address: r.from_address, name: r.from_name ?? '' } : null,
      to: r.to_addresses ?? '',
      cc: r.cc_addresses ?? '',
      subject: r.subject,
      textBody: r.text_body,
      hasHtml: Number(r.has_html) === 1,
      remoteImages: Number(r.remote_images),
      flags: parseMessageFlags(r.flags),
      authorUserId: r.author_user_id,
      deliveryStatus: r.delivery_status,
      deliveryError: r.delivery_error,
      createdAt: Number(r.created_at),
      attachments: attachments.get(r.id) ?? [],
    }))
  }

  private async attachmentsOfMessages(messageIds: number[]): Promise<Map<number, AttachmentMeta[]>> {
    const out = new Map<number, AttachmentMeta[]>()
    for (const part of chunk(messageIds, maxInList)) {
      const rows = await this.db
        .selectFrom('attachments')
        .select(['id', 'message_id', 'filename', 'content_type', 'size', 'content_id', 'inline', 'sha256'])
        .where('message_id', 'in', part)
        .orderBy('id')
        .execute()
      for (const r of rows) {
        const list = out.get(r.message_id) ?? []
        list.push({
          id: r.id,
          messageId: r.message_id,
          filename: r.filename,
          contentType: r.content_type,
          size: Number(r.size),
          contentId: r.content_id,
          inline: Boolean(r.inline),
          sha256: r.sha256,
        })
        out.set(r.message_id, list)
      }
    }
    return out
  }

  async attachment(attachmentId: number): Promise<AttachmentContent | undefined> {
    const r = await this.db
      .selectFrom('attachments')
      .innerJoin('messages', 'messages.id', 'attachments.message_id')
      .select([
        'attachments.id',
        'attachments.message_id',
        'attachments.filename',
        'attachments.content_type',
        'attachments.size',
        'attachments.content_id',
        'attachments.inline',
        'attachments.sha256',
        'attachments.content',
        'messages.request_id',
      ])
      .where('attachments.id', '=', attachmentId)
      .executeTakeFirst()
    if (!r) return undefined
    return {
      id: r.id,
      messageId: r.message_id,
      requestId: r.request_id,
      filename: r.filename,
      contentType: r.content_type,
      size: Number(r.size),
      contentId: r.content_id,
      inline: Boolean(r.inline),
      sha256: r.sha256,
      content: Buffer.from(r.content),
    }
  }

  /** Content of some attachments of one message (ids of other messages are ignored). */
  async attachmentContents(
    messageId: number,
    ids: number[],
  ): Promise<Array<{ id: number; content_type: string; size: number; content: Buffer }>> {
    if (ids.length === 0) return []
    const rows = await this.db
      .selectFrom('attachments')
      .select(['id', 'content_type', 'size', 'content'])
      .where('message_id', '=', messageId)
      .where('id', 'in', ids.slice(0, maxInList))
      .execute()
    return rows.map((r) => ({ id: r.id, content_type: r.content_type, size: Number(r.size), content: Buffer.from(r.content) }))
  }

  async messageBody(messageId: number) {
    return this.db
      .selectFrom('messages')
      .leftJoin('inbound_mail', 'inbound_mail.id', 'messages.inbound_mail_id')
      .select(['messages.id', 'messages.request_id', 'messages.html_body', 'messages.remote_images', 'inbound_mail.raw_hash'])
      .where('messages.id', '=', messageId)
      .executeTakeFirst()
  }

  async setStatus(requestId: number, status: RequestStatus, at: number): Promise<boolean> {
    const result = await this.db
      .updateTable('requests')
      .set({ status, last_activity_at: at })
      .where('id', '=', requestId)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) > 0
  }

  private auditQuery() {
    return this.db
      .selectFrom('inbound_mail')
      .leftJoin('email_servers', 'email_servers.id', 'inbound_mail.server_id')
      .leftJoin('requests', 'requests.id', 'inbound_mail.request_id')
  }

  async audit(filter: AuditFilter): Promise<Page<AuditEntry>> {
    const { page, pageSize, offset } = clampPaging(filter)
    let q = this.auditQuery()
    if (filter.serverId !== undefined) q = q.where('inbound_mail.server_id', '=', filter.serverId)
    if (filter.outcome !== undefined) q = q.where('inbound_mail.outcome', '=', filter.outcome)
    const messageId = filter.messageId?.trim().replace(/^<|>$/g, '')
    if (messageId) q = q.where('inbound_mail.message_id_header', '=', messageId)
    const search = filter.search?.trim().toLowerCase()
    if (search) {
      const pattern = `%${escapeLike(search)}%`
      q = q.where((eb) =>
        eb.or([
          eb(sql`lower(inbound_mail.sender)`, 'like', sql`${pattern} escape '\\'`),
          eb(sql`lower(inbound_mail.subject)`, 'like', sql`${pattern} escape '\\'`),
        ]),
      )
    }
    const total = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
    const rows = await q
      .selectAll('inbound_mail')
      .select(['email_servers.name as server_name', 'requests.number as request_number'])
      .orderBy('inbound_mail.received_at', 'desc')
      .orderBy('inbound_mail.id', 'desc')
      .limit(pageSize)
      .offset(offset)
      .execute()
    return { items: rows.map(toAuditEntry), total: Number(total.n), page, pageSize }
  }

  async auditEntry(id: number): Promise<AuditEntry | undefined> {
    const row = await this.auditQuery()
      .selectAll('inbound_mail')
      .select(['email_servers.name as server_name', 'requests.number as request_number'])
      .where('inbound_mail.id', '=', id)
      .executeTakeFirst()
    return row ? toAuditEntry(row) : undefined
  }

  async serverStats(serverIds: number[], dayStart: number): Promise<ServerMailStats[]> {
    const out: ServerMailStats[] = []
    // Three index lookups per server (inbound_mail (server_id, received_at) and (outcome, received_at)),
    // never a scan of the server's whole history.
    for (const serverId of serverIds) {
      const last = await this.db
        .selectFrom('inbound_mail')
        .select((eb) => eb.fn.max('received_at').as('at'))
        .where('server_id', '=', serverId)
        .executeTakeFirst()
      const today = await this.db
        .selectFrom('inbound_mail')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('server_id', '=', serverId)
        .where('received_at', '>=', dayStart)
        .executeTakeFirstOrThrow()
      const quarantined = await this.db
        .selectFrom('inbound_mail')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('outcome', '=', 'quarantined')
        .where('server_id', '=', serverId)
        .executeTakeFirstOrThrow()
      out.push({
        serverId,
        messagesToday: Number(today.n),
        lastReceivedAt: last?.at === null || last?.at === undefined ? null : Number(last.at),
        quarantined: Number(quarantined.n),
      })
    }
    return out
  }
}

function toAuditEntry(r: Selectable<InboundMailTable> & { server_name: string | null; request_number: number | null }): AuditEntry {
  return {
    id: r.id,
    serverId: r.server_id,
    serverName: r.server_name,
    sourceKey: r.source_key,
    rawHash: r.raw_hash,
    size: Number(r.size),
    messageIdHeader: r.message_id_header,
    sender: r.sender,
    subject: r.subject,
    receivedAt: Number(r.received_at),
    outcome: r.outcome,
    reason: r.outcome_reason,
    requestId: r.request_id,
    requestNumber: r.request_number,
    messageRowId: r.message_id,
    attempts: Number(r.attempts),
    processedAt: r.processed_at === null ? null : Number(r.processed_at),
  }
}
