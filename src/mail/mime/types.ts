/**
 * The result of parsing one raw message. Everything in here is plain data (strings, arrays, plain
 * objects, `Uint8Array`) so that it survives `structuredClone` / `postMessage` unchanged: the
 * parser runs in worker threads (see parser-pool.ts) and hands this object to the main thread.
 *
 * Nothing in here is trusted: every value comes from the sender. Filters (src/ingest/filters)
 * read it and set typed decisions on the ingest context; they never copy header values into
 * decisions.
 */
export interface ParsedMail {
  /**
   * The first `Message-ID` header, without angle brackets and trimmed. Undefined when the header is
   * missing or is not a usable id (empty, contains whitespace or control characters, too long).
   * @see https://www.rfc-editor.org/rfc/rfc5322#section-3.6.4
   */
  messageId?: string
  /** Message-IDs from `In-Reply-To`, without angle brackets, in header order. */
  inReplyTo: string[]
  /**
   * Message-IDs from `References`, without angle brackets, in header order (oldest first, the
   * parent last, RFC 5322 3.6.4). Capped: the first id and the most recent ones are kept.
   */
  references: string[]
  /** Decoded `Subject` (RFC 2047 encoded words decoded), '' when there is none. */
  subject: string
  /** The first mailbox of `From`. */
  from?: MailAddress
  to: MailAddress[]
  cc: MailAddress[]
  replyTo: MailAddress[]
  /** `Date` as an ISO 8601 string; undefined when missing or unparseable (never "now"). */
  date?: string
  /**
   * The header fields of the top-level message: lower-case name → decoded values in header order.
   * Values are unfolded, RFC 2047 decoded, raw 8-bit bytes read as UTF-8 (or windows-1252 when they
   * are not valid UTF-8), truncated to `ParseLimits.maxHeaderValueLength` characters; the whole
   * record is capped at `ParseLimits.maxHeaderRecordLength` characters (a warning says what was cut).
   */
  headers: Record<string, string[]>
  /** The plain-text body (all text/plain parts), if any. */
  text?: string
  /** The HTML body, raw and UNSANITIZED: pass it through `sanitizeMailHtml` before showing it. */
  html?: string
  /**
   * The HTML body sanitized for display with remote images blocked, when parsed with
   * `{ sanitizeHtml: true }` and there is an HTML body (see safe-html.ts).
   */
  safeHtml?: SafeHtml
  attachments: MailAttachment[]
  /** Set for `multipart/report; report-type=delivery-status` (a bounce or delay notification). */
  report?: DeliveryReport
  /** What was odd about the message but did not stop it from being parsed, human readable. */
  warnings: string[]
}

/** `sanitizeMailHtml` output whose `cid:` images point at placeholders (see safe-html.ts). */
export interface SafeHtml {
  html: string
  /** The placeholders' random token. */
  token: string
  /** Remote images replaced by the placeholder GIF. */
  blockedRemoteImages: number
}

export interface MailAddress {
  /** The address as written (not lower-cased). '' is never used: entries without one are dropped. */
  address: string
  /** The decoded display name, '' when there is none. */
  name: string
}

export interface MailAttachment {
  /** Sanitized basename (see `sanitizeAttachmentName`); a generated name when the part had none. */
  filename: string
  /** Lower-case `type/subtype`; `application/octet-stream` when missing or malformed. */
  contentType: string
  /** Size of the decoded content in bytes. */
  size: number
  /** `Content-ID` without angle brackets, when the part has one. */
  contentId?: string
  /**
   * True when the HTML body shows this part through a `cid:` reference (an embedded image): such
   * parts need not be listed as attachments. Everything else is false, whatever its disposition,
   * so that nothing the body does not show is hidden.
   */
  inline: boolean
  /** Hex SHA-256 of the decoded content. */
  sha256: string
  /** The decoded content; its ArrayBuffer is owned by this object alone (safe to transfer). */
  content: Uint8Array
}

/**
 * The machine-readable part of a delivery status notification.
 * @see https://www.rfc-editor.org/rfc/rfc3464#section-2
 */
export interface DeliveryReport {
  kind: 'delivery-status'
  /**
   * Message-ID (without brackets) of the message this report is about, read from the returned
   * original (`message/rfc822`, `text/rfc822-headers` or their RFC 6532 `global` forms).
   */
  originalMessageId?: string
  /** `Original-Recipient` or else `Final-Recipient` of the first recipient, address type removed. */
  originalRecipient?: string
  /** `Action` of the first recipient: failed, delayed, delivered, relayed or expanded (RFC 3464 2.3.3). */
  action?: string
  /** `Status` of the first recipient, e.g. `5.1.1` (RFC 3463). */
  status?: string
  /** `Diagnostic-Code` of the first recipient, type removed, e.g. `550 5.1.1 User unknown`. */
  diagnostic?: string
}

/**
 * Bounds on the work one message may cause. Mail is hostile input: without them a message with
 * thousands of parts or a megabyte header could take the parser's time and memory. Exceeding a
 * hard limit throws `AppError('mail_unparseable')` with the reason; soft limits truncate and warn.
 */
export interface ParseLimits {
  /** Larger raw messages are refused (hard). Default 64 MiB. */
  maxMessageBytes: number
  /** The header block of any one MIME part (hard, enforced by mailsplit). Default 4 MiB. */
  maxHeadBytes: number
  /** The most MIME parts in one message (hard, enforced by mailsplit). Default 1000. */
  maxParts: number
  /** Each value in `ParsedMail.headers` is cut to this many characters (soft). Default 16 KiB. */
  maxHeaderValueLength: number
  /** All of `ParsedMail.headers` together (soft: later fields are dropped). Default 256 KiB. */
  maxHeaderRecordLength: number
  /** Ids kept from `References` / `In-Reply-To` (soft). Default 100. */
  maxReferences: number
  /** Addresses kept per address header (soft). Default 500. */
  maxAddresses: number
  /** HTML longer than this is not converted to text when there is no text part (soft). Default 2 MiB. */
  maxHtmlToTextLength: number
  /**
   * Wall-clock bound for one parse (hard). In-process this only works while the parser yields to
   * the event loop; the worker pool enforces it by terminating the worker. Default 30 s.
   */
  timeoutMs: number
}

export const defaultParseLimits: Readonly<ParseLimits> = Object.freeze({
  maxMessageBytes: 64 * 1024 * 1024,
  maxHeadBytes: 4 * 1024 * 1024,
  maxParts: 1000,
  maxHeaderValueLength: 16 * 1024,
  maxHeaderRecordLength: 256 * 1024,
  maxReferences: 100,
  maxAddresses: 500,
  maxHtmlToTextLength: 2 * 1024 * 1024,
  timeoutMs: 30_000,
})

export interface ParseMailOptions {
  limits?: Partial<ParseLimits>
  /** Also sanitize the HTML body into `safeHtml` (in the parser worker, off the main thread). */
  sanitizeHtml?: boolean
}
