import type { ParsedMail } from '../../mail/mime/types.ts'

/** Helpers for reading `ParsedMail.headers` in filters. Names are lower-case. */

/** The first value of a header field, or undefined when it is absent. */
export function firstHeader(mail: ParsedMail, name: string): string | undefined {
  return mail.headers[name]?.[0]
}

/** Whether the mail has at least one field of that name. */
export function hasHeader(mail: ParsedMail, name: string): boolean {
  return (mail.headers[name]?.length ?? 0) > 0
}

/**
 * The leading token of a structured value, lower-cased, with RFC 5322 comments and parameters
 * removed: `Auto-Replied (vacation); owner=x` → `auto-replied`.
 */
export function headerToken(value: string | undefined): string {
  if (value === undefined) return ''
  return value
    .replace(/\([^()]*\)/g, ' ')
    .split(';')[0]
    .trim()
    .toLowerCase()
}

/** `type/subtype` and the `report-type` parameter of the top-level Content-Type. */
export function rootContentType(mail: ParsedMail): { type: string; reportType?: string } {
  const value = firstHeader(mail, 'content-type') ?? ''
  const type = headerToken(value)
  const reportType = /;\s*report-type\s*=\s*"?([\w.-]+)"?/i.exec(value)?.[1]?.toLowerCase()
  return reportType === undefined ? { type } : { type, reportType }
}
