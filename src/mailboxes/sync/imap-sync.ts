import type { ImapFlow } from 'imapflow'
import type { EmailServer } from '../../storage/schema.ts'
import { AppError } from '../../shared/errors.ts'
import { connectImap } from '../../mail/imap/connect.ts'
import { BATCH_BYTES, BATCH_MESSAGES, MailboxSession, deferred, withTimeout } from './session.ts'
import type { RawMessage } from './session.ts'

/**
 * How long the connection stays quiet before imapflow starts IDLE by itself. Short, because mail
 * that arrives before IDLE starts is only announced when it does (Dovecot reports pending changes
 * as soon as IDLE begins); long enough that back-to-back commands of a sync do not each pay
 * an IDLE/DONE round trip.
 */
const AUTO_IDLE_DELAY_MS = 100
/**
 * IDLE is restarted this often: RFC 2177 section 3 asks clients to re-issue IDLE at least every
 * 29 minutes, and some servers (and NAT boxes) drop quiet connections sooner. Below the 5-minute
 * socket timeout, so a server that sends no keep-alive during IDLE never trips it.
 * @see https://www.rfc-editor.org/rfc/rfc2177#section-3
 */
const MAX_IDLE_MS = 4 * 60_000
/** Batches handed to the ingest pipeline and not yet committed (see `syncOnce`). */
const MAX_BATCHES_IN_FLIGHT = 2
/** Messages up to this size are listed without their size: a full batch of them stays within BATCH_BYTES. */
const SMALL_MESSAGE_BYTES = Math.floor(BATCH_BYTES / BATCH_MESSAGES)
/** Above this many new UIDs (by UIDNEXT), the new messages are listed with SEARCH (see `listNew`). */
const SEARCH_LISTING_ABOVE = 500
/** Messages from this size on are streamed into a buffer of their own (see `fetchSources`). */
const STREAM_MESSAGE_BYTES = 4 * 1024 * 1024
/** Partial FETCH size when streaming: few round trips, small transient buffers. */
const DOWNLOAD_CHUNK_BYTES = 2 * 1024 * 1024

interface Listed {
  uid: number
  size: number
}

/**
 * One message streamed into a SharedArrayBuffer-backed Buffer sized from the listing (grown if
 * the server sends more than it announced). Undefined when the message is gone.
 */
async function downloadMessage(client: ImapFlow, listed: Listed): Promise<Buffer | undefined> {
  const options = { uid: true, chunkSize: DOWNLOAD_CHUNK_BYTES }
  const { meta, content } = await client.download(String(listed.uid), undefined, options)
  if (!content) return undefined
  let raw = Buffer.from(new SharedArrayBuffer(Math.max(1, meta.expectedSize ?? listed.size)))
  let length = 0
  for await (const chunk of content as AsyncIterable<Buffer>) {
    if (length + chunk.length > raw.length) {
      const grown = Buffer.from(new SharedArrayBuffer(Math.max(raw.length * 2, length + chunk.length)))
      raw.copy(grown, 0, 0, length)
      raw = grown
    }
    chunk.copy(raw, length)
    length += chunk.length
  }
  return raw.subarray(0, length)
}

/** A compact UID set (`3:7,9,12:14`) for ascending UIDs. */
export function uidSet(uids: number[]): string {
  const parts: string[] = []
  let start = uids[0]!
  let prev = start
  for (const uid of uids.slice(1)) {
    if (uid === prev + 1) {
      prev = uid
      continue
    }
    parts.push(start === prev ? String(start) : `${start}:${prev}`)
    start = prev = uid
  }
  parts.push(start === prev ? String(start) : `${start}:${prev}`)
  return parts.join(',')
}

/** Splits listed messages into batches of at most BATCH_MESSAGES and about BATCH_BYTES (at least one message each). */
export function batchesOf(listed: Listed[]): Listed[][] {
  const out: Listed[][] = []
  let current: Listed[] = []
  let bytes = 0
  for (const m of listed) {
    if (current.length && (current.length >= BATCH_MESSAGES || bytes + m.size > BATCH_BYTES)) {
      out.push(current)
      current = []
      bytes = 0
    }
    current.push(m)
    bytes += m.size
  }
  if (current.length) out.push(current)
  return out
}

/**
 * One IMAP mailbox (DESIGN.md, Ingestion must be exactly-once and O(new mail)):
 * - the cursor is (UIDVALIDITY, last UID) in `mailbox_cursors`; a sync fetches only `UID > last`,
 *   never relying on `\Seen` (people read the mailbox too);
 * - each batch is handed to the ingest pipeline with the cursor advance and the lease guard in
 *   the same transaction; the server is acknowledged (flag, move, delete) only after the commit;
 * - a UIDVALIDITY change (RFC 3501 section 2.3.1.1: every UID is void) resyncs from UID 1, and the
 *   pipeline's Message-ID + hash dedupe makes that harmless;
 * - with nothing new a sync costs O(1): SELECT's UIDNEXT is compared with the cursor, and after an
 *   EXISTS a single `UID FETCH last+1:*` listing answers;
 * - then IDLE (imapflow's auto-IDLE, restarted every MAX_IDLE_MS); EXISTS triggers a sync, bursts
 *   coalesce into one; a closed connection ends `runConnection` and the session reconnects with
 *   backoff and a full sync.
 */
export class ImapMailboxSync extends MailboxSession {
  readonly protocol = 'imap' as const
  private client: ImapFlow | undefined
  /** Set by EXISTS: SELECT's UIDNEXT no longer tells whether there is something new. */
  private uidNextStale = false
  private dirty = false
  private running: Promise<void> | undefined
  private ended = deferred()
  private pollTimer: NodeJS.Timeout | undefined

  protected onStop(): void {
    this.ended.resolve()
    if (!this.graceful) this.client?.close()
  }

  protected async runConnection(server: EmailServer, healthy: (n: number) => Promise<void>): Promise<void> {
    this.ended = deferred()
    this.uidNextStale = false
    this.dirty = false
    const client = await this.withFreshLogin(server, (login) =>
      connectImap(server, login, { autoIdleDelay: AUTO_IDLE_DELAY_MS, maxIdleTime: this.deps.maxIdleMs ?? MAX_IDLE_MS }),
    )
    this.client = client
    const ended = this.ended
    client.on('close', () => ended.resolve())
    client.on('error', (err) => ended.reject(err))
    try {
      try {
        await client.mailboxOpen(server.folder)
      } catch (err: any) {
        if (!client.usable) throw err
        throw new AppError('imap_folder_missing', `Signed in, but the folder "${server.folder}" cannot be opened (${err?.responseText ?? err?.message}). Check the Folder field.`, {
          cause: err,
        })
      }
      // New mail while IDLE (or after a NOOP) arrives as EXISTS (RFC 3501 section 7.3.1).
      client.on('exists', (e) => {
        this.uidNextStale = true
        if (e.count > e.prevCount) this.requestSync(server, healthy)
      })
      // A re-SELECT that found a new UIDVALIDITY: every cached UID is void, resync.
      client.on('mailboxOpen', () => this.requestSync(server, healthy))
      if (!client.capabilities.has('IDLE')) {
        // No IDLE: poll at the configured interval (each poll is one round trip when nothing is new).
        this.pollTimer = setInterval(() => {
          this.uidNextStale = true
          this.requestSync(server, healthy)
        }, server.poll_interval_seconds * 1000)
      }
      this.requestSync(server, healthy)
      await ended.promise
    } finally {
      clearInterval(this.pollTimer)
      // Graceful: the batch in hand finishes (the sync loop checks `stopping` between batches).
      if (this.running) await withTimeout(this.running, 30_000, 'batch in hand').catch(() => {})
      this.client = undefined
      if (this.stopping && this.graceful && client.usable) await withTimeout(client.logout(), 5_000, 'IMAP logout').catch(() => client.close())
      else client.close()
    }
  }

  /** Coalesces sync requests: one sync runs at a time, and a request during it means one more pass. */
  private requestSync(server: EmailServer, healthy: (n: number) => Promise<void>): void {
    this.dirty = true
    if (this.running || this.stopping) return
    const ended = this.ended
    this.running = (async () => {
      while (this.dirty && !this.stopping) {
        this.dirty = false
        this.state = 'syncing'
        const n = await this.syncOnce(server)
        await healthy(n)
        this.state = 'idle'
      }
    })()
      .catch((err) => ended.reject(err))
      .finally(() => {
        this.running = undefined
      })
  }

  /** One pass: everything above the cursor, in batches. Returns how many messages were new. */
  private async syncOnce(server: EmailServer): Promise<number> {
    const client = this.client
    const box = client?.mailbox
    if (!client || !box) throw new AppError('mail_server_unreachable', 'The IMAP connection closed during the sync.', { transient: true })
    const uidValidity = box.uidValidity.toString()
    const cursor = await this.loadCursor(server, uidValidity)
    let lastUid = cursor.lastUid
    const uidNext = this.uidNextStale ? undefined : box.uidNext

    // O(1) when nothing is new: UIDNEXT from SELECT is one past the highest UID ever assigned.
    if (uidNext !== undefined && uidNext - 1 <= lastUid) {
      await this.noteModseq(server, uidValidity, box.highestModseq, cursor.highestModseq)
      return 0
    }
    const listed = await this.listNew(client, lastUid, uidNext)
    let fresh = 0
    // Batch k+1 is fetched while batches k and k-1 are parsed and committed (the pipeline commits a
    // server's batches in call order): the cores parse while this thread talks IMAP and SQL.
    // Acknowledgement of a batch waits for its commit.
    const inFlight: Array<{ uids: number[]; bytes: number; done: Promise<number> }> = []
    const settleOldest = async (): Promise<void> => {
      const oldest = inFlight.shift()!
      fresh += await oldest.done
      await this.acknowledge(client, server, oldest.uids)
    }
    for (const batch of batchesOf(listed)) {
      if (this.stopping) break
      const raws = await this.fetchSources(client, batch, uidValidity)
      const bytes = raws.reduce((n, r) => n + r.raw.length, 0)
      // Bounded by count and by bytes, so that a run of large mails is not held in memory at once.
      // A batch whose messages were all expunged meanwhile only moves the cursor, outside the
      // pipeline's commit order: every batch before it must have committed first.
      const full = () =>
        inFlight.length >= MAX_BATCHES_IN_FLIGHT || inFlight.reduce((n, b) => n + b.bytes, bytes) > BATCH_BYTES
      while (inFlight.length > 0 && (raws.length === 0 || full())) await settleOldest()
      if (this.stopping) break
      const maxUid = batch[batch.length - 1]!.uid
      const done = this.commitBatch(server, uidValidity, raws, maxUid)
      done.catch(() => {})
      inFlight.push({ uids: batch.map((b) => b.uid), bytes, done })
      lastUid = maxUid
    }
    while (inFlight.length > 0) await settleOldest()
    // UIDs below UIDNEXT that were not listed were expunged and never come back: skip them.
    if (!listed.length && uidNext !== undefined && uidNext - 1 > lastUid) await this.advanceCursor(server, uidValidity, uidNext - 1)
    await this.noteModseq(server, uidValidity, box.highestModseq, cursor.highestModseq)
    return fresh
  }

  /**
   * The UIDs above the cursor with their sizes (for `batchesOf` and to stream large mail), in one
   * round trip when few are new (`UID FETCH last+1:* RFC822.SIZE`, the push path). When SELECT's
   * UIDNEXT says that many are new (a first sync, a catch-up), that listing would answer one line
   * per message, which costs more main-thread time than the fetch of the bodies: two SEARCH
   * commands answer in a few lines whatever the count instead. Messages of at most
   * SMALL_MESSAGE_BYTES are then listed at that size (a full batch of them stays within
   * BATCH_BYTES) and the few larger ones (`SEARCH LARGER`, RFC 3501 section 6.4.4) get their real
   * size. A server whose SEARCH fails gets the listing.
   */
  private async listNew(client: ImapFlow, lastUid: number, uidNext: number | undefined): Promise<Listed[]> {
    const range = `${lastUid + 1}:*`
    const fewNew = uidNext === undefined || uidNext - 1 - lastUid <= SEARCH_LISTING_ABOVE
    if (fewNew) return this.listSizes(client, range, lastUid)
    const all = await client.search({ uid: range }, { uid: true })
    if (!Array.isArray(all)) return this.listSizes(client, range, lastUid)
    // `last+1:*` always matches the highest message, even when its UID is below last+1
    // (RFC 3501 section 6.4.8, `*` is the largest UID in use), hence the filter.
    const uids = all.filter((uid) => uid > lastUid).sort((a, b) => a - b)
    if (uids.length === 0) return []
    const large = await client.search({ uid: range, larger: SMALL_MESSAGE_BYTES }, { uid: true })
    if (!Array.isArray(large)) return this.listSizes(client, range, lastUid)
    const sizes = new Map<number, number>()
    const largeUids = large.filter((uid) => uid > lastUid).sort((a, b) => a - b)
    if (largeUids.length > 0) {
      for await (const m of client.fetch(uidSet(largeUids), { uid: true, size: true }, { uid: true })) {
        if (m.size !== undefined) sizes.set(m.uid, m.size)
      }
    }
    return uids.map((uid) => ({ uid, size: sizes.get(uid) ?? SMALL_MESSAGE_BYTES }))
  }

  private async listSizes(client: ImapFlow, range: string, lastUid: number): Promise<Listed[]> {
    const listed: Listed[] = []
    for await (const m of client.fetch(range, { uid: true, size: true }, { uid: true })) {
      if (m.uid > lastUid) listed.push({ uid: m.uid, size: m.size ?? 0 })
    }
    return listed.sort((a, b) => a.uid - b.uid)
  }

  private async loadCursor(server: EmailServer, uidValidity: string): Promise<{ lastUid: number; highestModseq: string | null }> {
    const db = this.deps.db
    const row = await db
      .selectFrom('mailbox_cursors')
      .select(['uidvalidity', 'last_uid', 'highest_modseq'])
      .where('server_id', '=', server.id)
      .where('folder', '=', server.folder)
      .executeTakeFirst()
    if (row && row.uidvalidity === uidValidity) return { lastUid: Number(row.last_uid), highestModseq: row.highest_modseq }
    if (row) {
      this.log.warn({ previous: row.uidvalidity, current: uidValidity }, 'UIDVALIDITY changed: resyncing the folder from UID 1 (already ingested mail is recognised as duplicate)')
    }
    // The new UIDVALIDITY is stored under the lease guard, so a worker that lost the mailbox cannot reset it.
    await db.transaction().execute(async (trx) => {
      await this.guard(trx)
      await trx
        .insertInto('mailbox_cursors')
        .values({ server_id: server.id, folder: server.folder, uidvalidity: uidValidity, last_uid: 0, highest_modseq: null, updated_at: Date.now() })
        .onConflict((oc) => oc.columns(['server_id', 'folder']).doUpdateSet({ uidvalidity: uidValidity, last_uid: 0, highest_modseq: null, updated_at: Date.now() }))
        .execute()
    })
    return { lastUid: 0, highestModseq: null }
  }

  /**
   * The batch's messages in UID order. Small ones come in one FETCH. Each one of at least
   * STREAM_MESSAGE_BYTES is streamed (imapflow `download`, partial FETCHes of
   * DOWNLOAD_CHUNK_BYTES) into a buffer of its listed size, so that the message is held once
   * instead of as chunks plus their concatenation. That buffer is a SharedArrayBuffer: the parser
   * worker reads it where it is instead of getting a copy (see parser-pool.ts).
   */
  private async fetchSources(client: ImapFlow, batch: Listed[], uidValidity: string): Promise<RawMessage[]> {
    const out: Array<RawMessage & { uid: number }> = []
    const add = (uid: number, raw: Buffer) => out.push({ uid, sourceKey: `imap:${uidValidity}:${uid}`, raw })
    const small = batch.filter((m) => m.size < STREAM_MESSAGE_BYTES)
    if (small.length > 0) {
      const set = uidSet(small.map((b) => b.uid))
      for await (const m of client.fetch(set, { uid: true, source: true }, { uid: true })) {
        // A message expunged between the listing and this fetch is simply absent.
        if (m.source) add(m.uid, m.source)
      }
    }
    for (const m of batch) {
      if (m.size < STREAM_MESSAGE_BYTES) continue
      const raw = await downloadMessage(client, m)
      if (raw) add(m.uid, raw)
    }
    out.sort((a, b) => a.uid - b.uid)
    return out.map(({ sourceKey, raw }) => ({ sourceKey, raw }))
  }

  /** Messages, audit rows, cursor advance and lease check: one transaction (or none of it). */
  private async commitBatch(server: EmailServer, uidValidity: string, raws: RawMessage[], maxUid: number): Promise<number> {
    if (!raws.length) {
      await this.advanceCursor(server, uidValidity, maxUid)
      return 0
    }
    const outcomes = await this.deps.ingest.ingestBatch(server, raws, {
      beforeCommit: async (trx) => {
        await this.guard(trx)
        const r = await trx
          .updateTable('mailbox_cursors')
          .set({ last_uid: maxUid, updated_at: Date.now() })
          .where('server_id', '=', server.id)
          .where('folder', '=', server.folder)
          .where('uidvalidity', '=', uidValidity)
          .executeTakeFirst()
        if (Number(r.numUpdatedRows) !== 1) {
          throw new AppError('cursor_changed', 'the mailbox cursor changed under this sync (UIDVALIDITY reset); the batch is rolled back', { transient: true })
        }
      },
    })
    const fresh = outcomes.filter((o) => o.outcome !== 'duplicate').length
    this.log.debug({ messages: raws.length, fresh, lastUid: maxUid }, 'batch committed')
    return fresh
  }

  private async advanceCursor(server: EmailServer, uidValidity: string, lastUid: number): Promise<void> {
    await this.deps.db.transaction().execute(async (trx) => {
      await this.guard(trx)
      await trx
        .updateTable('mailbox_cursors')
        .set({ last_uid: lastUid, updated_at: Date.now() })
        .where('server_id', '=', server.id)
        .where('folder', '=', server.folder)
        .where('uidvalidity', '=', uidValidity)
        .where('last_uid', '<', lastUid)
        .execute()
    })
  }

  /** Keeps CONDSTORE's HIGHESTMODSEQ (RFC 7162) beside the cursor, for the Workers page and diagnostics. */
  private async noteModseq(server: EmailServer, uidValidity: string, modseq: bigint | undefined, stored: string | null): Promise<void> {
    if (modseq === undefined || modseq.toString() === stored) return
    await this.deps.db
      .updateTable('mailbox_cursors')
      .set({ highest_modseq: modseq.toString() })
      .where('server_id', '=', server.id)
      .where('folder', '=', server.folder)
      .where('uidvalidity', '=', uidValidity)
      .execute()
  }

  /**
   * After the commit only: a crash between commit and acknowledgement leaves the mail on the
   * server, already ingested and behind the cursor, which is harmless; the reverse order could
   * lose mail. A failed acknowledgement is logged, never retried into a duplicate.
   */
  private async acknowledge(client: ImapFlow, server: EmailServer, uids: number[]): Promise<void> {
    if (!uids.length || server.ack_action === 'leave') return
    const set = uidSet(uids)
    try {
      if (server.ack_action === 'seen') await client.messageFlagsAdd(set, ['\\Seen'], { uid: true })
      else if (server.ack_action === 'delete') await client.messageDelete(set, { uid: true })
      else if (server.ack_action === 'move' && server.ack_folder) {
        // imapflow answers a refused MOVE with `false`; the usual reason is [TRYCREATE] (RFC 3501
        // section 6.4.7: the target folder does not exist), so create it and try once more.
        let moved = await client.messageMove(set, server.ack_folder, { uid: true })
        if (moved === false) {
          await client.mailboxCreate(server.ack_folder).catch(() => {})
          moved = await client.messageMove(set, server.ack_folder, { uid: true })
        }
        if (moved === false) throw new Error(`MOVE to "${server.ack_folder}" was refused`)
      }
    } catch (err: any) {
      this.log.warn({ action: server.ack_action, count: uids.length, error: err?.responseText ?? err?.message }, 'acknowledging fetched mail on the server failed (the mail is ingested)')
    }
  }
}
