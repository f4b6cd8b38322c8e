import { createHash } from 'node:crypto'
import { MailParser, parseAddressHeader } from 'mailparser'
import type { AttachmentStream, EmailAddress, HeaderValue, MessageText, StructuredHeader } from 'mailparser'
import { AppError } from '../../shared/errors.ts'
import { sanitizeAttachmentName } from '../../ingest/attachment-names.ts'
import {
  deliveryStatusTypes,
  parseDeliveryStatus,
  returnedMessageId,
  returnedMessageTypes,
} from './delivery-report.ts'
import { decodeRawHeaderBytes, splitHeaderLine, truncateString } from './header-values.ts'
import { normalizeMessageId, parseMessageIdList } from './message-id.ts'
import { prepareSafeHtml } from './safe-html.ts'
import { defaultParseLimits } from './types.ts'
import type {
  DeliveryReport,
  MailAddress,
  MailAttachment,
  ParseLimits,
  ParseMailOptions,
  ParsedMail,
  SafeHtml,
} from './types.ts'

/**
 * Parses one raw RFC 5322 message with mailparser's streaming `MailParser` (it decodes
 * windows-1252 and other legacy charsets, and is hardened against hostile structure).
 *
 * Lenient where mail in the wild is sloppy (missing closing boundary, raw 8-bit headers, unknown
 * charsets, garbage Message-ID): those parse, with a line in `warnings`. Hard failures reject with
 * `AppError('mail_unparseable', reason)`: empty input, no header fields at all, more than
 * `limits.maxParts` parts, a header block over `limits.maxHeadBytes`, a message over
 * `limits.maxMessageBytes`, or a parse that outlives `limits.timeoutMs`. The caller stores such a
 * message as quarantined with the reason (DESIGN.md "Ingestion must be exactly-once").
 *
 * CPU-bound: in a server, call it through `createParserPool` so parsing uses every core and a
 * pathological message can be stopped by terminating its worker.
 */
export async function parseMail(raw: Uint8Array, options: ParseMailOptions = {}): Promise<ParsedMail> {
  const limits: ParseLimits = { ...defaultParseLimits, ...options.limits }
  const input = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength)
  if (!/\S/.test(input.subarray(0, 4096).toString('latin1'))) throw unparseable('the message is empty')
  if (input.byteLength > limits.maxMessageBytes) {
    const size = input.byteLength
    throw unparseable(`the message is ${size} bytes, more than the limit of ${limits.maxMessageBytes}`)
  }
  const collected = await runParser(input, limits)
  const mail = buildParsedMail(input, collected, limits)
  if (options.sanitizeHtml) {
    let safeHtml: SafeHtml | undefined
    try {
      safeHtml = prepareSafeHtml(mail)
    } catch (err) {
      throw unparseable(`the HTML body cannot be sanitized: ${(err as Error)?.message ?? String(err)}`, err)
    }
    if (safeHtml !== undefined) mail.safeHtml = safeHtml
  }
  return mail
}

function unparseable(reason: string, cause?: unknown): AppError {
  return new AppError('mail_unparseable', reason, cause === undefined ? {} : { cause })
}

interface CollectedAttachment {
  stream: AttachmentStream
  content: Uint8Array
  sha256: string
}

interface Collected {
  headers: Map<string, HeaderValue>
  headerLines: ReadonlyArray<{ key: string; line: string }>
  text?: MessageText
  attachments: CollectedAttachment[]
  decodeWords: (value: string) => string
}

/** What mailparser says when a mailsplit limit is hit, mapped to a reason an admin can read. */
function describeParserError(err: Error & { code?: string }, limits: ParseLimits): string {
  if (err.code === 'EMAXLEN' && /child nodes/i.test(err.message)) {
    return `the message has more than ${limits.maxParts} MIME parts`
  }
  if (err.code === 'EMAXLEN' && /header size/i.test(err.message)) {
    return `a header block is larger than ${limits.maxHeadBytes} bytes`
  }
  return `the MIME structure cannot be parsed: ${err.message}`
}

function runParser(input: Buffer, limits: ParseLimits): Promise<Collected> {
  return new Promise<Collected>((resolve, reject) => {
    const parser = new MailParser({
      // The status part is read here as data (see buildReport), not mixed into the body text.
      keepDeliveryStatus: true,
      // Attached messages stay whole `.eml` attachments: nothing of them is lost, the DSN's
      // returned original is available for threading, and nesting cannot recurse through them.
      ignoreEmbedded: true,
      // The agent view renders the HTML or the text itself; textAsHtml is not needed.
      skipTextToHtml: true,
      skipTextLinks: true,
      skipImageLinks: true,
      maxHtmlLengthToParse: limits.maxHtmlToTextLength,
      checksumAlgo: false,
      maxHeadSize: limits.maxHeadBytes,
      maxChildNodes: limits.maxParts,
    })
    // mailparser keeps its RFC 2047 decoder (libmime, which knows the legacy charsets) on the
    // instance; it is not in the typings. Without it encoded words stay as they are.
    const codec = (parser as unknown as { libmime?: { decodeWords?: (value: string) => string } }).libmime
    const decodeWords =
      typeof codec?.decodeWords === 'function'
        ? (value: string) => codec.decodeWords!(value)
        : (value: string) => value
    const collected: Collected = { headers: new Map(), headerLines: [], attachments: [], decodeWords }
    let settled = false
    const fail = (err: AppError) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      parser.destroy()
      reject(err)
    }
    const timer = setTimeout(
      () => fail(unparseable(`parsing took longer than ${limits.timeoutMs} ms and was stopped`)),
      limits.timeoutMs,
    )

    parser.on('headers', (headers) => {
      collected.headers = headers
      collected.headerLines = parser.headerLines || []
    })
    parser.on('error', (err: Error & { code?: string }) => {
      fail(unparseable(describeParserError(err, limits), err))
    })

    let reading = false
    const read = (): void => {
      reading = true
      for (;;) {
        if (settled) return
        const data = parser.read()
        if (data === null) {
          reading = false
          return
        }
        if (data.type === 'text') {
          collected.text = data
          continue
        }
        // An attachment: the parser waits until its content is read and released.
        readAttachment(data, collected, input.length)
          .then(() => {
            data.release?.()
            read()
          })
          .catch((err: unknown) => fail(unparseable('an attachment cannot be decoded', err)))
        return
      }
    }
    parser.on('readable', () => {
      if (!reading) read()
    })
    parser.on('end', () => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(collected)
    })
    // In slices, with backpressure: mailparser decodes each slice it is given in one piece (a
    // base64 body becomes a string of the slice's size first), so a 40 MB message written at once
    // would cost several times its size in transient memory.
    let offset = 0
    const feed = (): void => {
      try {
        while (!settled && offset < input.length) {
          const end = Math.min(offset + inputSliceBytes, input.length)
          const more = parser.write(input.subarray(offset, end))
          offset = end
          if (!more) {
            parser.once('drain', feed)
            return
          }
        }
        if (!settled) parser.end()
      } catch (err) {
        // Called from a 'drain' event too, where a throw would escape this promise.
        fail(unparseable(describeParserError(err as Error, limits), err))
      }
    }
    feed()
  })
}

/** How much of the raw message is handed to mailparser at a time (see runParser). */
const inputSliceBytes = 256 * 1024

function readAttachment(stream: AttachmentStream, collected: Collected, maxBytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const content = new AttachmentContent(maxBytes)
    const hash = createHash('sha256')
    stream.content.on('data', (chunk: Buffer) => {
      content.append(chunk)
      hash.update(chunk)
    })
    stream.content.once('error', reject)
    stream.content.once('end', () => {
      collected.attachments.push({ stream, content: content.finish(), sha256: hash.digest('hex') })
      resolve()
    })
  })
}

/**
 * The decoded bytes of one attachment, in an ArrayBuffer of their own (Buffer.concat may hand
 * out a slice of Node's shared pool), so that the pool can transfer it to the main thread
 * instead of copying it. Small contents are collected as chunks and copied once at the end. A
 * large one goes straight into a resizable ArrayBuffer that reserves `maxBytes` of address space
 * (decoding never makes a part larger than the raw message) and commits memory as it grows:
 * a 30 MB attachment costs 30 MB, not chunks plus their concatenation.
 */
class AttachmentContent {
  private chunks: Buffer[] = []
  private size = 0
  private large: ResizableArrayBuffer | undefined

  constructor(private readonly maxBytes: number) {}

  append(chunk: Buffer): void {
    const growsLarge = this.size + chunk.length > largeAttachmentBytes && this.maxBytes > largeAttachmentBytes
    if (!this.large && growsLarge) {
      const grown = new ResizableArrayBufferConstructor(this.size, { maxByteLength: this.maxBytes })
      this.copyChunksInto(new Uint8Array(grown))
      this.large = grown
    }
    if (this.large) {
      const end = this.size + chunk.length
      // A part cannot decode to more than the raw message; if it did, this throws and the
      // message is quarantined rather than silently truncated.
      this.large.resize(end)
      new Uint8Array(this.large, this.size, chunk.length).set(chunk)
      this.size = end
      return
    }
    this.chunks.push(chunk)
    this.size += chunk.length
  }

  finish(): Uint8Array {
    if (this.large) return new Uint8Array(this.large, 0, this.size)
    const content = new Uint8Array(this.size)
    this.copyChunksInto(content)
    return content
  }

  private copyChunksInto(target: Uint8Array): void {
    let offset = 0
    for (const chunk of this.chunks) {
      target.set(chunk, offset)
      offset += chunk.length
    }
    this.chunks = []
  }
}

// Resizable ArrayBuffers (ES2024) are in Node 20's V8; the es2023 lib we compile against lacks their types.
interface ResizableArrayBuffer extends ArrayBuffer {
  resize(byteLength: number): void
}
const ResizableArrayBufferConstructor = ArrayBuffer as unknown as new (
  byteLength: number,
  options: { maxByteLength: number },
) => ResizableArrayBuffer

/** Attachments that grow past this go into a resizable buffer (see AttachmentContent). */
const largeAttachmentBytes = 1024 * 1024

// RFC 5322 3.6.8: a field name is printable ASCII except colon.
const fieldNamePattern = /^[!-9;-~]+$/

// Address headers are parsed before RFC 2047 decoding: a display name that decodes to
// `"x" <ceo@bank.example>` must stay a name (RFC 2047 section 5).
const addressHeaderNames = new Set(['from', 'to', 'cc', 'reply-to'])

// Message-ID lists are parsed from the whole value (bounded by maxHeadBytes): the record's
// truncation would cut off the end of References, where the parent's id is.
const idListHeaderNames = new Set(['references', 'in-reply-to'])

interface HeaderRecord {
  headers: Record<string, string[]>
  /** Address header values with 8-bit bytes decoded but encoded words left for the address parser. */
  addressValues: Record<string, string[]>
  /** References / In-Reply-To values, decoded, not truncated. */
  idValues: Record<string, string[]>
}

function buildHeaderRecord(collected: Collected, limits: ParseLimits, warnings: string[]): HeaderRecord {
  const record: Record<string, string[]> = Object.create(null)
  const addressValues: Record<string, string[]> = Object.create(null)
  const idValues: Record<string, string[]> = Object.create(null)
  let total = 0
  let malformed = 0
  let dropped = 0
  const truncatedNames = new Set<string>()
  const eightBitNames = new Map<string, string>()
  for (const { line } of collected.headerLines) {
    if (line.trim() === '') continue
    const { name, value: rawValue } = splitHeaderLine(line)
    if (!fieldNamePattern.test(name) || name.length > 200) {
      malformed++
      continue
    }
    if (idListHeaderNames.has(name)) (idValues[name] ??= []).push(decodeRawHeaderBytes(rawValue).value)
    // Cut before decoding, so that a megabyte value costs nothing more than its copy here.
    let value = truncateString(rawValue, limits.maxHeaderValueLength * 4)
    const decoded = decodeRawHeaderBytes(value)
    if (decoded.eightBit) eightBitNames.set(name, decoded.eightBit)
    value = decoded.value
    if (addressHeaderNames.has(name)) (addressValues[name] ??= []).push(value)
    try {
      value = collected.decodeWords(value)
    } catch {
      // libmime throws on a few malformed encoded words; the undecoded text is still useful.
    }
    value = value.replace(/[\r\n]+/g, ' ').trim()
    if (value.length > limits.maxHeaderValueLength) {
      value = truncateString(value, limits.maxHeaderValueLength)
      truncatedNames.add(name)
    }
    if (total + name.length + value.length > limits.maxHeaderRecordLength) {
      dropped++
      continue
    }
    total += name.length + value.length
    ;(record[name] ??= []).push(value)
  }
  for (const name of truncatedNames) {
    warnings.push(
      `header ${name} was longer than ${limits.maxHeaderValueLength} characters and was truncated`,
    )
  }
  if (dropped > 0) {
    const max = limits.maxHeaderRecordLength
    warnings.push(`${dropped} header field(s) dropped: the header is larger than ${max} characters`)
  }
  if (malformed > 0) warnings.push(`${malformed} malformed header line(s) ignored`)
  for (const [name, charset] of eightBitNames) {
    warnings.push(`header ${name} contains raw 8-bit bytes, read as ${charset}`)
  }
  // A plain object again (not null-prototype) so it structured-clones like any other record.
  return { headers: { ...record }, addressValues, idValues }
}

function parseAddresses(values: string[] | undefined, max: number): MailAddress[] {
  if (!values || values.length === 0) return []
  const out: MailAddress[] = []
  const visit = (entry: EmailAddress): void => {
    if (out.length >= max) return
    if (entry.group) {
      entry.group.forEach(visit)
      return
    }
    const address = (entry.address ?? '').trim()
    if (address === '' || /[\s<>\p{Cc}]/u.test(address)) return
    out.push({ address, name: (entry.name ?? '').replace(/[\r\n\p{Cc}]+/gu, ' ').trim() })
  }
  // The ASCII (punycode) form of a domain is kept: it is what we compare and send to.
  parseAddressHeader(values, { flatten: true, decodePunycode: false }).value.forEach(visit)
  return out
}

function parseDate(value: string | undefined, warnings: string[]): string | undefined {
  if (value === undefined) {
    warnings.push('the message has no Date header')
    return undefined
  }
  const time = Date.parse(value)
  const year = Number.isNaN(time) ? NaN : new Date(time).getUTCFullYear()
  if (Number.isNaN(time) || year < 1900 || year > 9999) {
    warnings.push('the Date header cannot be parsed')
    return undefined
  }
  return new Date(time).toISOString()
}

/** The content type as mailparser parsed it (first Content-Type header of the part). */
function contentTypeOf(headers: Map<string, HeaderValue>): StructuredHeader | undefined {
  const value = headers.get('content-type')
  const first = Array.isArray(value) ? value[0] : value
  const structured = first && typeof first === 'object' && 'value' in first && 'params' in first
  return structured ? (first as StructuredHeader) : undefined
}

const contentTypePattern = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/

function cleanContentType(value: string | undefined): string {
  const lower = (value ?? '').trim().toLowerCase()
  return contentTypePattern.test(lower) ? lower : 'application/octet-stream'
}

/** Names for parts that came without one: readable, with an extension that opens them. */
function fallbackName(contentType: string, index: number): string {
  switch (contentType) {
    case 'message/rfc822':
    case 'message/global':
      return 'message.eml'
    case 'text/rfc822-headers':
    case 'message/global-headers':
      return 'message-headers.txt'
    case 'message/delivery-status':
    case 'message/global-delivery-status':
      return 'delivery-status.txt'
    case 'message/disposition-notification':
    case 'message/global-disposition-notification':
      return 'disposition-notification.txt'
  }
  const extensions: Record<string, string> = {
    'text/plain': 'txt',
    'text/html': 'html',
    'text/calendar': 'ics',
    'image/png': 'png',
    'image/jpeg': 'jpg',
    'image/gif': 'gif',
    'image/webp': 'webp',
    'application/pdf': 'pdf',
  }
  return `attachment-${index + 1}.${extensions[contentType] ?? 'bin'}`
}

function buildAttachments(collected: Collected, html: string | undefined): MailAttachment[] {
  // cid: references are matched case-insensitively: Content-IDs are compared that way by
  // every mail client we know of, although RFC 2392 keeps the local part case-sensitive.
  const referenced = new Set<string>()
  if (html) {
    for (const match of html.matchAll(/\bcid:([^'"\s)>]{1,256})/gi)) {
      let cid = match[1]
      try {
        cid = decodeURIComponent(cid)
      } catch {
        // keep it as written
      }
      referenced.add(cid.toLowerCase())
    }
  }
  return collected.attachments.map(({ stream, content, sha256 }, index) => {
    const contentType = cleanContentType(stream.contentType)
    const contentId = stream.cid ? normalizeContentId(stream.cid) : undefined
    return {
      filename: sanitizeAttachmentName(stream.filename, fallbackName(contentType, index)),
      contentType,
      size: content.byteLength,
      ...(contentId === undefined ? {} : { contentId }),
      inline: contentId !== undefined && referenced.has(contentId.toLowerCase()),
      sha256,
      content,
    }
  })
}

function normalizeContentId(cid: string): string | undefined {
  const value = cid.replace(/^<|>$/g, '').trim()
  return value === '' || value.length > 250 || /[\s<>\p{Cc}]/u.test(value) ? undefined : value
}

function buildReport(
  collected: Collected,
  rootType: StructuredHeader | undefined,
): DeliveryReport | undefined {
  if (rootType?.value?.toLowerCase() !== 'multipart/report') return undefined
  if ((rootType.params['report-type'] ?? '').toLowerCase() !== 'delivery-status') return undefined
  const report: DeliveryReport = { kind: 'delivery-status' }
  for (const { stream, content } of collected.attachments) {
    const type = (stream.contentType ?? '').toLowerCase()
    if (deliveryStatusTypes.has(type) && report.action === undefined && report.status === undefined) {
      const body = Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString('utf8')
      const fields = parseDeliveryStatus(body)
      for (const [key, value] of Object.entries(fields)) {
        if (value !== undefined) (report as unknown as Record<string, string>)[key] = value
      }
    } else if (returnedMessageTypes.has(type) && report.originalMessageId === undefined) {
      const id = returnedMessageId(content)
      if (id !== undefined) report.originalMessageId = id
    }
  }
  return report
}

function buildParsedMail(input: Buffer, collected: Collected, limits: ParseLimits): ParsedMail {
  const warnings: string[] = []
  const { headers, addressValues, idValues } = buildHeaderRecord(collected, limits, warnings)
  if (Object.keys(headers).length === 0) {
    throw unparseable('no header fields found: this is not an e-mail message')
  }

  const first = (name: string): string | undefined => headers[name]?.[0]

  const messageIdValues = headers['message-id'] ?? []
  const messageId = normalizeMessageId(messageIdValues[0])
  if (messageIdValues.length === 0) warnings.push('the message has no Message-ID header')
  else if (messageId === undefined) {
    warnings.push('the Message-ID header is not a valid message id; it was ignored')
  }
  if (messageIdValues.length > 1) {
    warnings.push(`the message has ${messageIdValues.length} Message-ID headers; the first one is used`)
  }

  const capIds = (ids: string[], header: string): string[] => {
    if (ids.length <= limits.maxReferences) return ids
    const kept = limits.maxReferences - 1
    warnings.push(`${header} lists ${ids.length} message ids; only the first and the last ${kept} are kept`)
    return [ids[0], ...ids.slice(ids.length - kept)]
  }
  const references = capIds(parseMessageIdList((idValues['references'] ?? []).join(' ')), 'References')
  const inReplyTo = capIds(parseMessageIdList((idValues['in-reply-to'] ?? []).join(' ')), 'In-Reply-To')

  const fromList = parseAddresses(addressValues['from']?.slice(0, 1), 1)
  if (fromList.length === 0) warnings.push('the message has no usable From address')

  const rootType = contentTypeOf(collected.headers)
  const isMultipart = rootType?.value?.toLowerCase().startsWith('multipart/') === true
  const boundary = isMultipart ? rootType?.params.boundary : undefined
  if (boundary && input.indexOf(`--${boundary}--`, 0, 'latin1') < 0) {
    warnings.push('the multipart body has no closing boundary (the message may be truncated)')
  }
  const charset = rootType?.params.charset
  if (charset && !isKnownCharset(charset)) {
    warnings.push(`unknown charset "${truncateString(charset, 40)}"; the body was read as UTF-8`)
  }

  const text = collected.text
  if (text?.textConversionError) {
    warnings.push(`the HTML body could not be converted to text: ${text.textConversionError.message}`)
  }
  const html = text?.html
  const date = parseDate(first('date'), warnings)

  const mail: ParsedMail = {
    ...(messageId === undefined ? {} : { messageId }),
    inReplyTo,
    references,
    // Control characters (an encoded word can carry any) have no place in a one-line subject.
    subject: (first('subject') ?? '').replace(/\p{Cc}+/gu, ' '),
    ...(fromList[0] === undefined ? {} : { from: fromList[0] }),
    to: parseAddresses(addressValues['to'], limits.maxAddresses),
    cc: parseAddresses(addressValues['cc'], limits.maxAddresses),
    replyTo: parseAddresses(addressValues['reply-to'], limits.maxAddresses),
    ...(date === undefined ? {} : { date }),
    headers,
    ...(text?.text === undefined ? {} : { text: text.text }),
    ...(html === undefined ? {} : { html }),
    attachments: buildAttachments(collected, html),
    warnings,
  }
  const report = buildReport(collected, rootType)
  if (report !== undefined) mail.report = report
  return mail
}

// Labels libmime decodes (some through its own tables), even where TextDecoder does not know them.
const commonCharsetLabel =
  /^(?:(?:us-)?ascii|utf-?8|ks_c_5601-1987|iso-2022-jp.*|shift[-_]jis|cp\d+|windows-\d+)$/

/**
 * Whether a charset label is one a decoder knows. Only used for a warning: libmime decodes some
 * labels that TextDecoder lacks (and falls back to UTF-8 for unknown ones), so the check errs
 * on the side of silence for the common legacy names.
 */
function isKnownCharset(label: string): boolean {
  const normalized = label.trim().toLowerCase()
  if (commonCharsetLabel.test(normalized)) return true
  try {
    new TextDecoder(normalized)
    return true
  } catch {
    return false
  }
}
