/**
 * Shared setup for the pipeline tests: a fresh database of a dialect, an incoming server row,
 * a pipeline with its own parser pool, and raw mail builders.
 */
import { Writable } from 'node:stream'
import { IngestPipeline } from '../../src/ingest/pipeline.ts'
import type { IngestPipelineOptions, RawMessage } from '../../src/ingest/pipeline.ts'
import { createLogger } from '../../src/shared/logger.ts'
import { createMetrics } from '../../src/shared/metrics.ts'
import type { Storage } from '../../src/storage/database.ts'
import type { EmailServer } from '../../src/storage/schema.ts'
import { openTestStorage } from '../support/dialects.ts'
import type { Dialect } from '../support/dialects.ts'

export const messageIdDomain = 'desk.example.test'

export interface PipelineWorld {
  storage: Storage
  server: EmailServer
  pipeline: IngestPipeline
  logs: string[]
  metrics: ReturnType<typeof createMetrics>
  /** Another pipeline on the same database (e.g. with other limits); closed with the world. */
  another(options?: Partial<IngestPipelineOptions>): IngestPipeline
  cleanup(): Promise<void>
}

export async function insertServer(storage: Storage, values: { email: string; direction?: 'incoming' | 'outgoing'; name?: string }): Promise<EmailServer> {
  const now = Date.now()
  return storage.db
    .insertInto('email_servers')
    .values({
      direction: values.direction ?? 'incoming',
      name: values.name ?? `Mailbox ${values.email}`,
      email_address: values.email,
      protocol: values.direction === 'outgoing' ? 'smtp' : 'imap',
      host: '127.0.0.1',
      port: 993,
      security: 'tls',
      auth_type: 'password',
      status: 'connected',
      ack_action: 'leave',
      created_at: now,
      updated_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
}

export async function startPipelineWorld(dialect: Dialect, options: Partial<IngestPipelineOptions> = {}): Promise<PipelineWorld> {
  const { storage, cleanup } = await openTestStorage(dialect)
  const server = await insertServer(storage, { email: 'support@example.test', name: 'Support' })
  const logs: string[] = []
  const logger = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk, _enc, cb) {
        logs.push(String(chunk))
        cb()
      },
    }),
  })
  const metrics = createMetrics()
  const make = (extra: Partial<IngestPipelineOptions> = {}) =>
    new IngestPipeline({ storage, logger, metrics, messageIdDomain, parserOptions: { size: 2 }, ...options, ...extra })
  const pipelines = [make()]
  return {
    storage,
    server,
    pipeline: pipelines[0]!,
    logs,
    metrics,
    another(extra) {
      const p = make(extra)
      pipelines.push(p)
      return p
    },
    async cleanup() {
      for (const p of pipelines) await p.close()
      await cleanup()
    },
  }
}

let counter = 0

/** A plain RFC 5322 message; `headers` override or add fields (null removes one). */
export function mail(opts: {
  from?: string
  to?: string
  subject?: string
  messageId?: string | null
  body?: string
  headers?: Record<string, string>
  /** A complete body part with its own Content-Type (for multipart or HTML). */
  contentType?: string
} = {}): Buffer {
  const n = ++counter
  const fields: string[] = [
    `From: ${opts.from ?? 'Alice Example <alice@customer.example>'}`,
    `To: ${opts.to ?? 'support@example.test'}`,
    `Subject: ${opts.subject ?? `Question ${n}`}`,
    'Date: Tue, 14 May 2024 09:30:00 +0200',
    'MIME-Version: 1.0',
  ]
  if (opts.messageId !== null) fields.push(`Message-ID: <${opts.messageId ?? `m${n}.${process.pid}@customer.example`}>`)
  for (const [k, v] of Object.entries(opts.headers ?? {})) fields.push(`${k}: ${v}`)
  fields.push(`Content-Type: ${opts.contentType ?? 'text/plain; charset=utf-8'}`)
  return Buffer.from(`${fields.join('\r\n')}\r\n\r\n${opts.body ?? `Hello, this is message ${n}.`}\r\n`)
}

let keys = 0
export function raw(message: Buffer, sourceKey?: string): RawMessage {
  return { sourceKey: sourceKey ?? `imap:1:${++keys}`, raw: message }
}

/** Inserts an outgoing message of ours into a request (what the outbox writes), returning its row id. */
export async function insertOutbound(storage: Storage, requestId: number, messageIdHeader: string): Promise<number> {
  const row = await storage.db
    .insertInto('messages')
    .values({
      request_id: requestId,
      direction: 'outbound',
      message_id_header: messageIdHeader,
      from_address: 'support@example.test',
      to_addresses: 'alice@customer.example',
      subject: 'Re: [#1] Question',
      text_body: 'We are on it.',
      delivery_status: 'sent',
      created_at: Date.now(),
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  return row.id
}
