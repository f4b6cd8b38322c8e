import type { ParsedMail } from '../mail/mime/types.ts'
import { sanitizeMailHtml } from '../ingest/sanitize-html.ts'
import { AppError } from '../shared/errors.ts'
import type { Storage } from '../storage/database.ts'
import { attachmentHeaders, attachmentUrl, isInlineImageType } from './downloads.ts'
import type { DownloadHeaders } from './downloads.ts'
import { RequestRepository } from './repository.ts'
import { requestStatuses } from './types.ts'
import type {
  AttachmentContent,
  AuditEntry,
  AuditFilter,
  Page,
  RequestDetail,
  RequestListFilter,
  RequestStatus,
  RequestSummary,
  ServerMailStats,
} from './types.ts'

export interface RequestServiceDeps {
  storage: Storage
  /** Parses a stored raw message again (the ingest pipeline's pool), for "Show remote images". */
  parse: (raw: Uint8Array) => Promise<ParsedMail>
  clock?: () => number
}

/** Images of one body embedded as `data:` URLs at most, in bytes. */
const maxEmbeddedImageBytes = 20 * 1024 * 1024

export interface MessageBody {
  /** Sanitized HTML: no script, handlers, forms, frames, `javascript:` or CSS that fetches. */
  html: string
  /** Remote images still blocked in `html`. */
  blockedRemoteImages: number
  remoteImagesShown: boolean
}

export interface RawMailDownload {
  filename: string
  content: Buffer
}

/**
 * Requests (tickets) as the portal and the API see them: lists, the conversation with its
 * attachments, the sanitized HTML bodies, status changes, and the Email Audit with its quarantine.
 * Mail becomes requests in the ingest pipeline, not here.
 */
export class RequestService {
  readonly repository: RequestRepository
  private readonly clock: () => number

  constructor(private readonly deps: RequestServiceDeps) {
    this.repository = new RequestRepository(deps.storage.db, deps.storage.caps)
    this.clock = deps.clock ?? Date.now
  }

  list(filter: RequestListFilter = {}): Promise<Page<RequestSummary>> {
    return this.repository.listRequests(filter)
  }

  /** A request with its whole conversation, oldest message first, and attachment metadata. */
  async get(id: number): Promise<RequestDetail> {
    const summary = await this.repository.requestSummary(id)
    if (!summary) throw notFound()
    return { ...summary, messages: await this.repository.messagesOf(id) }
  }

  async getByNumber(n: number): Promise<RequestDetail> {
    const id = await this.repository.requestIdByNumber(n)
    if (id === undefined) throw notFound()
    return this.get(id)
  }

  /**
   * An attachment of this request, with the headers to send it under (RFC 6266 disposition, a
   * safe content type). An attachment of another request is "not found", never served.
   */
  async attachment(
    requestId: number,
    attachmentId: number,
    options: { forceDownload?: boolean } = {},
  ): Promise<AttachmentContent & { headers: DownloadHeaders }> {
    const found = await this.repository.attachment(attachmentId)
    if (!found || found.requestId !== requestId) {
      throw new AppError('attachment_not_found', 'This attachment does not exist.')
    }
    return { ...found, headers: attachmentHeaders(found, options) }
  }

  /**
   * The sanitized HTML of a message. Remote images are blocked as stored; with `remoteImages`
   * the stored raw mail is parsed and sanitized again with them allowed (the agent asked). The
   * message's own images are embedded (see `embedImages`) unless `embedImages` is false.
   */
  async messageBody(
    requestId: number,
    messageId: number,
    options: { remoteImages?: boolean; embedImages?: boolean } = {},
  ): Promise<MessageBody> {
    const row = await this.repository.messageBody(messageId)
    if (!row || row.request_id !== requestId || row.html_body === null) {
      throw new AppError('message_not_found', 'This message has no HTML body.')
    }
    const stored = { html: row.html_body, blockedRemoteImages: Number(row.remote_images), remoteImagesShown: false }
    let body: MessageBody = stored
    if (options.remoteImages && stored.blockedRemoteImages > 0 && row.raw_hash) {
      const raw = await this.repository.rawMail(row.raw_hash)
      if (raw) {
        const mail = await this.deps.parse(raw)
        const cidMap: Record<string, string> = {}
        const detail = await this.repository.messagesOf(requestId)
        for (const a of detail.find((m) => m.id === messageId)?.attachments ?? []) {
          if (a.contentId && !Object.hasOwn(cidMap, a.contentId)) cidMap[a.contentId] = attachmentUrl(requestId, a.id)
        }
        const sanitized = sanitizeMailHtml(mail.html ?? '', { cidMap, allowRemoteImages: true })
        body = { html: sanitized.html, blockedRemoteImages: 0, remoteImagesShown: true }
      }
    }
    return options.embedImages === false ? body : { ...body, html: await this.embedImages(requestId, messageId, body.html) }
  }

  /**
   * Replaces the message's own image URLs (`cid:` images, mapped at ingest) by `data:` URLs. The
   * body is shown in a sandboxed iframe, whose opaque origin sends no session cookie with its
   * requests (SameSite), so a same-origin URL would only reach the sign-in page. Raster images
   * only, and at most `maxEmbeddedImageBytes` in all; the rest keep their URL.
   */
  private async embedImages(requestId: number, messageId: number, html: string): Promise<string> {
    const pattern = new RegExp(`src="${attachmentUrl(requestId, '(\\d+)')}"`, 'g')
    const ids = [...new Set([...html.matchAll(pattern)].map((m) => Number(m[1])))]
    if (ids.length === 0) return html
    const dataUrls = new Map<number, string>()
    let budget = maxEmbeddedImageBytes
    for (const a of await this.repository.attachmentContents(messageId, ids)) {
      if (!isInlineImageType(a.content_type) || a.size > budget) continue
      budget -= a.size
      const type = attachmentHeaders({ filename: '', contentType: a.content_type }).contentType
      dataUrls.set(a.id, `data:${type};base64,${a.content.toString('base64')}`)
    }
    return html.replace(pattern, (whole, id: string) => {
      const url = dataUrls.get(Number(id))
      return url === undefined ? whole : `src="${url}"`
    })
  }

  async setStatus(requestId: number, status: RequestStatus): Promise<void> {
    if (!requestStatuses.includes(status)) {
      throw new AppError('request_status_invalid', `The status must be one of ${requestStatuses.join(', ')}.`)
    }
    if (!(await this.repository.setStatus(requestId, status, this.clock()))) throw notFound()
  }

  /** The Email Audit: every message received and what became of it, newest first. */
  audit(filter: AuditFilter = {}): Promise<Page<AuditEntry>> {
    return this.repository.audit(filter)
  }

  /** Messages that could not be processed, waiting for an admin (Re-process in the portal). */
  quarantine(filter: Omit<AuditFilter, 'outcome'> = {}): Promise<Page<AuditEntry>> {
    return this.repository.audit({ ...filter, outcome: 'quarantined' })
  }

  async auditEntry(inboundMailId: number): Promise<AuditEntry> {
    const entry = await this.repository.auditEntry(inboundMailId)
    if (!entry) throw new AppError('inbound_mail_not_found', 'This message is not in the Email Audit.')
    return entry
  }

  /** The message exactly as received, for download as an .eml file. */
  async rawMail(inboundMailId: number): Promise<RawMailDownload> {
    const row = await this.repository.inboundMail(inboundMailId)
    if (!row) throw new AppError('inbound_mail_not_found', 'This message is not in the Email Audit.')
    const content = await this.repository.rawMail(row.raw_hash)
    if (!content) throw new AppError('raw_mail_not_found', 'The raw mail of this message is no longer stored.')
    return { filename: `message-${row.id}.eml`, content }
  }

  /** Per incoming server: messages received today (UTC), the last one's time, the quarantine's size. */
  async serverStats(serverIds?: number[]): Promise<ServerMailStats[]> {
    const ids = serverIds ?? (await this.repository.incomingServerIds())
    const dayStart = new Date(this.clock()).setUTCHours(0, 0, 0, 0)
    return this.repository.serverStats(ids, dayStart)
  }
}

function notFound(): AppError {
  return new AppError('request_not_found', 'This request does not exist.')
}

