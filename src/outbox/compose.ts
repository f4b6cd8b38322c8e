import crypto from 'node:crypto'
import MailComposer from 'nodemailer/lib/mail-composer'
import { z } from 'zod'
import { AppError } from '../shared/errors.ts'
import { sanitizeAttachmentName } from '../ingest/attachment-names.ts'
import { formatMessageId, maxMessageIdLength } from '../mail/mime/message-id.ts'

/** One attachment of an outgoing message, as the agent uploaded it. */
export interface OutgoingAttachment {
  filename: string
  contentType: string
  content: Buffer
}

export interface MailboxAddress {
  address: string
  name?: string | null
}

export interface ComposeInput {
  from: MailboxAddress
  to: MailboxAddress[]
  subject: string
  /** Without angle brackets (see newMessageId). */
  messageId: string
  /** Without angle brackets. */
  inReplyTo?: string
  /** Without angle brackets, oldest first (see threadingHeaders). */
  references?: string[]
  text: string
  attachments?: OutgoingAttachment[]
  /**
   * deskmail's own automatic mail (the acknowledgement of a new request): marked so that other
   * responders stay quiet. RFC 3834 section 5 (`Auto-Submitted: auto-replied`) and Microsoft's
   * `X-Auto-Response-Suppress: All` (Exchange does not send its OOF/read receipts to it). No
   * `Precedence` header: RFC 3834 section 3.1.8 discourages it, and some servers drop such mail.
   */
  automatic?: boolean
  date?: Date
}

export interface ComposedMessage {
  raw: Buffer
  envelope: { from: string; to: string[] }
  messageId: string
  /** The attachments as they were put in the message (sanitized names). */
  attachments: OutgoingAttachment[]
}

/** Total size of the attachments of one message: under Gmail's 25 MB after base64 (x 4/3). */
export const maxAttachmentBytes = 18 * 1024 * 1024

const emailSchema = z.email()

/**
 * A header value must be one line: a CR or LF would end the header and let the rest of the value
 * become headers of its own (a `Bcc:` added through a subject). Refused rather than cleaned, so that
 * whoever sent it learns that the value is wrong.
 * @see https://www.rfc-editor.org/rfc/rfc5322#section-2.2 (header fields are lines)
 */
export function assertHeaderSafe(field: string, value: string): void {
  if (/[\r\n\0]/.test(value)) {
    throw new AppError('outbox_header_injection', `The ${field} contains a line break, which is not allowed in a mail header.`, {
      details: { field },
    })
  }
}

/** A valid single addr-spec (`user@example.com`), lower-cased domain untouched; refuses anything else. */
export function validateAddress(field: string, address: string): string {
  assertHeaderSafe(field, address)
  const trimmed = address.trim()
  if (trimmed.length > 254 || !emailSchema.safeParse(trimmed).success) {
    throw new AppError('outbox_invalid_address', `The ${field} "${trimmed.slice(0, 100)}" is not a valid email address.`, {
      details: { field },
    })
  }
  return trimmed
}

/**
 * Our Message-ID for a message of a request: `r{number}.m{messageRowId}.{random}@{domain}`. The
 * request number lets a human (and the own-mail filter) recognise it; the random part keeps it
 * unique across databases that reuse row ids (RFC 5322 3.6.4: "globally unique").
 * @see https://www.rfc-editor.org/rfc/rfc5322#section-3.6.4
 */
export function newMessageId(domain: string, parts: { requestNumber?: number; messageRowId?: number; prefix?: string }): string {
  const random = crypto.randomBytes(6).toString('hex')
  const left =
    parts.requestNumber !== undefined && parts.messageRowId !== undefined
      ? `r${parts.requestNumber}.m${parts.messageRowId}.${random}`
      : `${parts.prefix ?? 'x'}.${Date.now().toString(36)}.${random}`
  const id = `${left}@${domain}`
  if (!/^[A-Za-z0-9.-]+$/.test(domain) || id.length > maxMessageIdLength) {
    throw new AppError('outbox_message_id_domain_invalid', `DESKMAIL_MESSAGE_ID_DOMAIN "${domain}" cannot be used in a Message-ID.`)
  }
  return id
}

/**
 * Builds the MIME message (nodemailer's MailComposer): From with the display name, To, the subject,
 * our Message-ID, In-Reply-To and References, the plain-text body and the attachments.
 *
 * Attachment names are sanitized (basename only, no control or bidi characters); MailComposer writes
 * them as `Content-Disposition: attachment; filename*=utf-8''...` with RFC 2231 encoding, the
 * mail-side form of the `ext-value` syntax that RFC 6266 uses for HTTP downloads.
 * @see https://www.rfc-editor.org/rfc/rfc2183 (Content-Disposition in mail)
 * @see https://www.rfc-editor.org/rfc/rfc2231#section-4 (encoded, continued parameter values)
 */
export async function composeMessage(input: ComposeInput): Promise<ComposedMessage> {
  const from = validateAddress('From address', input.from.address)
  if (input.from.name) assertHeaderSafe('From display name', input.from.name)
  if (input.to.length === 0) throw new AppError('outbox_no_recipient', 'The message has no recipient.')
  const to = input.to.map((r) => {
    if (r.name) assertHeaderSafe('recipient name', r.name)
    return { address: validateAddress('recipient address', r.address), name: r.name ?? '' }
  })
  assertHeaderSafe('subject', input.subject)
  for (const id of [input.messageId, input.inReplyTo ?? '', ...(input.references ?? [])]) {
    assertHeaderSafe('Message-ID', id)
    if (/[<>\s]/.test(id)) throw new AppError('outbox_header_injection', 'A Message-ID contains angle brackets or white space.')
  }
  const attachments = (input.attachments ?? []).map((a, i) => {
    assertHeaderSafe('attachment content type', a.contentType)
    // A bare `type/subtype` (RFC 2045 5.1 tokens); anything else, parameters included, is sent as octets.
    const typed = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i.test(a.contentType.trim())
    const contentType = typed ? a.contentType.trim().toLowerCase() : 'application/octet-stream'
    return { filename: sanitizeAttachmentName(a.filename, `attachment-${i + 1}`), contentType, content: a.content }
  })
  const total = attachments.reduce((n, a) => n + a.content.length, 0)
  if (total > maxAttachmentBytes) {
    const message = `The attachments are ${Math.ceil(total / 1048576)} MB together; at most ${maxAttachmentBytes / 1048576} MB can be sent (mail servers refuse larger messages).`
    throw new AppError('outbox_attachments_too_large', message)
  }

  const headers: Record<string, string> = {}
  if (input.automatic) {
    headers['Auto-Submitted'] = 'auto-replied'
    headers['X-Auto-Response-Suppress'] = 'All'
  }
  const composer = new MailComposer({
    from: { name: input.from.name ?? '', address: from },
    to,
    subject: input.subject,
    messageId: formatMessageId(input.messageId),
    inReplyTo: input.inReplyTo ? formatMessageId(input.inReplyTo) : undefined,
    references: input.references?.length ? input.references.map(formatMessageId) : undefined,
    date: input.date ?? new Date(),
    headers,
    text: input.text,
    attachments: attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, content: a.content, contentDisposition: 'attachment' })),
    // Nothing of ours ever reads a file or a URL into a message.
    disableFileAccess: true,
    disableUrlAccess: true,
  })
  const raw = await composer.compile().build()
  return { raw, envelope: { from, to: to.map((t) => t.address) }, messageId: input.messageId, attachments }
}
