import { normalizeMessageId } from './message-id.ts'
import { decodeRawHeaderBytes, splitHeaderLine } from './header-values.ts'
import type { DeliveryReport } from './types.ts'

/**
 * Reading delivery status notifications (bounces).
 * @see https://www.rfc-editor.org/rfc/rfc3464#section-2 (multipart/report; report-type=delivery-status)
 * @see https://www.rfc-editor.org/rfc/rfc6533#section-6 (message/global-delivery-status and friends)
 */

/** Content types of the machine-readable status part. */
export const deliveryStatusTypes = new Set(['message/delivery-status', 'message/global-delivery-status'])

/** Content types of the part that returns the original message or its header. */
export const returnedMessageTypes = new Set([
  'message/rfc822',
  'text/rfc822-headers',
  'message/global',
  'message/global-headers',
])

/** The original's header block is read from at most this many bytes of the returned part. */
const maxReturnedHeadBytes = 256 * 1024

/** Parses `Name: value` fields (folded lines joined) of one block, names lower-cased. */
function parseFieldBlock(block: string): Map<string, string> {
  const fields = new Map<string, string>()
  const unfolded = block.replace(/\r?\n(?=[ \t])/g, '')
  for (const line of unfolded.split(/\r?\n/)) {
    const { name, value } = splitHeaderLine(line)
    if (name && !fields.has(name)) fields.set(name, value)
  }
  return fields
}

/** `rfc822; user@example.com` → `user@example.com` (the address-type / diagnostic-type is dropped). */
function withoutType(value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const semicolon = value.indexOf(';')
  const rest = (semicolon < 0 ? value : value.slice(semicolon + 1)).trim()
  return rest === '' ? undefined : rest.slice(0, 1000)
}

/**
 * The per-recipient fields of the first recipient in a `message/delivery-status` body: one block of
 * per-message fields, then one block per recipient, blocks separated by blank lines (RFC 3464 2.1).
 */
export function parseDeliveryStatus(body: string): Omit<DeliveryReport, 'kind' | 'originalMessageId'> {
  const blocks = body
    .replace(/^\s+/, '')
    .split(/\r?\n[ \t]*\r?\n/)
    .filter((block) => block.trim() !== '')
  // Some MTAs put everything in one block; then the recipient fields are in that block.
  const recipient = parseFieldBlock(blocks.length > 1 ? blocks[1] : (blocks[0] ?? ''))
  const action = recipient.get('action')?.toLowerCase()
  const status = recipient.get('status')?.match(/^\d\.\d{1,3}\.\d{1,3}/)?.[0]
  return {
    originalRecipient: withoutType(recipient.get('original-recipient') ?? recipient.get('final-recipient')),
    action: action && /^[a-z-]{1,20}$/.test(action) ? action : undefined,
    status,
    diagnostic: withoutType(recipient.get('diagnostic-code')),
  }
}

/**
 * The Message-ID of a returned original message (`message/rfc822` content or a
 * `text/rfc822-headers` block): only its header block is read, up to the first blank line.
 */
export function returnedMessageId(content: Uint8Array): string | undefined {
  const length = Math.min(content.byteLength, maxReturnedHeadBytes)
  const head = Buffer.from(content.buffer, content.byteOffset, length)
  const binary = head.toString('latin1')
  const end = binary.search(/\r?\n\r?\n/)
  const block = end < 0 ? binary : binary.slice(0, end)
  const fields = parseFieldBlock(block)
  const raw = fields.get('message-id')
  return raw === undefined ? undefined : normalizeMessageId(decodeRawHeaderBytes(raw).value)
}

/**
 * Looks for a returned original's `Message-ID:` line in the text of a bounce that is not an
 * RFC 3464 report (qmail, old Exim and Exchange bounces quote the original below a separator).
 * Only the first 64 KiB of text are searched.
 */
export function quotedOriginalMessageId(text: string | undefined): string | undefined {
  if (!text) return undefined
  const match = /^[ \t>]*Message-ID:[ \t]*(<[^<>\r\n]{1,300}>)/im.exec(text.slice(0, 64 * 1024))
  return match ? normalizeMessageId(match[1]) : undefined
}
