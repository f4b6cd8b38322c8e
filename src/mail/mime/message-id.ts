/**
 * Message-ID handling shared by the parser, the threading filter and the outbox.
 *
 * Ids are kept without angle brackets and compared exactly (RFC 5322 3.6.4 gives them no case
 * rules; every mail system we thread with echoes them back byte for byte).
 * @see https://www.rfc-editor.org/rfc/rfc5322#section-3.6.4
 */

/** Longer ids are treated as garbage: they are indexed in the database and no real MTA makes them. */
export const maxMessageIdLength = 250

// No whitespace, control characters, angle brackets or a second '@'-less form: `id-left "@" id-right`.
const messageIdPattern = /^[^\s<>\p{Cc}@]+@[^\s<>\p{Cc}@]+$/u

/**
 * One Message-ID from a header value such as `<abc@example.com>` (brackets optional, surrounding
 * comments and whitespace ignored). Returns undefined for anything that is not a usable id.
 */
export function normalizeMessageId(value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const bracketed = /<([^<>]*)>/.exec(value)
  const candidate = (bracketed ? bracketed[1] : value).trim()
  if (candidate.length === 0 || candidate.length > maxMessageIdLength) return undefined
  return messageIdPattern.test(candidate) ? candidate : undefined
}

/**
 * All Message-IDs in a `References` or `In-Reply-To` value, in order, duplicates removed. Ids in
 * angle brackets are taken as they are; a value without any brackets (some old mailers) is split
 * on whitespace and commas. Anything that is not a usable id is skipped.
 */
export function parseMessageIdList(value: string | undefined): string[] {
  if (!value) return []
  const found = new Set<string>()
  const bracketed = value.match(/<[^<>]*>/g)
  const candidates = bracketed ?? value.split(/[\s,]+/)
  for (const candidate of candidates) {
    const id = normalizeMessageId(candidate)
    if (id !== undefined) found.add(id)
  }
  return [...found]
}

/** `<id>` for use in a header. */
export function formatMessageId(id: string): string {
  return `<${id}>`
}

/** The lower-cased part after the last '@' (the domain of `id-right`), '' when there is none. */
export function messageIdDomain(id: string): string {
  const at = id.lastIndexOf('@')
  return at < 0 ? '' : id.slice(at + 1).toLowerCase()
}
