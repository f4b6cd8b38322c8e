import type { Kysely } from 'kysely'
import type { Database } from '../storage/schema.ts'
import type { IngestLookups, MessageIdMatch } from './context.ts'
import { chunk } from '../requests/repository.ts'

/**
 * A lookup failed (almost always the database): the batch must fail and be retried, not the
 * message be quarantined. The pipeline tells the two apart by this class.
 */
export class LookupFailure extends Error {
  constructor(cause: unknown) {
    super(`ingest lookup failed: ${(cause as Error)?.message ?? String(cause)}`, { cause })
    this.name = 'LookupFailure'
  }
}

const maxInList = 1000

/**
 * The filters' questions about stored mail (`IngestLookups`), answered against the `messages`
 * and `requests` tables inside the batch's transaction, plus what the batch itself has planned
 * so far: a customer's second mail answering their first one threads onto the request the first
 * one is creating, even though neither is written yet.
 *
 * Answers are cached for the batch; `prefetch` asks for every id and number a batch mentions in
 * two queries instead of one round trip per message (the difference between hundreds and
 * thousands of messages per second on PostgreSQL).
 */
export class BatchLookups implements IngestLookups {
  private readonly byMessageId = new Map<string, MessageIdMatch | null>()
  private readonly byNumber = new Map<number, number | null>()
  /** requestId → number, for every request seen or planned in this batch. */
  private readonly numbers = new Map<number, number>()

  constructor(private readonly db: Kysely<Database>) {}

  /** Loads the matches of many Message-IDs and request numbers at once. */
  async prefetch(messageIds: Iterable<string>, requestNumbers: Iterable<number>): Promise<void> {
    const ids = [...new Set(messageIds)].filter((id) => !this.byMessageId.has(id))
    const numbers = [...new Set(requestNumbers)].filter((n) => !this.byNumber.has(n))
    try {
      await this.loadMessageIds(ids)
      await this.loadNumbers(numbers)
    } catch (err) {
      throw new LookupFailure(err)
    }
  }

  async requestByMessageIds(ids: string[]): Promise<MessageIdMatch | undefined> {
    const missing = ids.filter((id) => !this.byMessageId.has(id))
    if (missing.length > 0) {
      try {
        await this.loadMessageIds(missing)
      } catch (err) {
        throw new LookupFailure(err)
      }
    }
    for (const id of ids) {
      const match = this.byMessageId.get(id)
      if (match) return match
    }
    return undefined
  }

  async requestByNumber(n: number): Promise<{ requestId: number } | undefined> {
    if (!this.byNumber.has(n)) {
      try {
        await this.loadNumbers([n])
      } catch (err) {
        throw new LookupFailure(err)
      }
    }
    const requestId = this.byNumber.get(n)
    return requestId ? { requestId } : undefined
  }

  /** The number of a request this batch has looked up or planned. */
  requestNumber(requestId: number): number | undefined {
    return this.numbers.get(requestId)
  }

  /** A message this batch is about to write: later messages of the batch may answer it. */
  rememberPlanned(messageId: string | undefined, match: MessageIdMatch): void {
    if (messageId === undefined) return
    // The first stored message with an id wins, as with the database (lowest row id first).
    if (!this.byMessageId.get(messageId)) this.byMessageId.set(messageId, match)
  }

  /** A request this batch creates, once its number is allocated. */
  rememberNumber(requestId: number, number: number): void {
    this.numbers.set(requestId, number)
    this.byNumber.set(number, requestId)
  }

  private async loadMessageIds(ids: string[]): Promise<void> {
    for (const part of chunk(ids, maxInList)) {
      const rows = await this.db
        .selectFrom('messages')
        .innerJoin('requests', 'requests.id', 'messages.request_id')
        .select(['messages.id', 'messages.request_id', 'messages.direction', 'messages.message_id_header', 'requests.number'])
        .where('messages.message_id_header', 'in', part)
        .orderBy('messages.id')
        .execute()
      for (const id of part) if (!this.byMessageId.has(id)) this.byMessageId.set(id, null)
      for (const r of rows) {
        const id = r.message_id_header!
        if (!this.byMessageId.get(id)) {
          this.byMessageId.set(id, { requestId: r.request_id, messageRowId: r.id, direction: r.direction })
        }
        this.numbers.set(r.request_id, r.number)
      }
    }
  }

  private async loadNumbers(numbers: number[]): Promise<void> {
    // Request numbers are 32-bit integer columns; anything outside cannot exist.
    const valid = numbers.filter((n) => Number.isSafeInteger(n) && n > 0 && n <= 2_147_483_647)
    for (const n of numbers) this.byNumber.set(n, null)
    for (const part of chunk(valid, maxInList)) {
      const rows = await this.db.selectFrom('requests').select(['id', 'number']).where('number', 'in', part).execute()
      for (const r of rows) {
        this.byNumber.set(r.number, r.id)
        this.numbers.set(r.id, r.number)
      }
    }
  }
}
