import { randomBytes } from 'node:crypto'
import { sanitizeMailHtml } from '../../ingest/sanitize-html.ts'
import type { ParsedMail, SafeHtml } from './types.ts'

/**
 * Sanitizing the HTML body costs about as much CPU as parsing the whole message, so the parser
 * workers do it right after parsing (`parseMail(raw, { sanitizeHtml: true })`), and both cores
 * share it instead of the main thread, which has the IMAP connection and the database to serve.
 *
 * A worker does not know the ids the attachments will get, so `cid:` images (RFC 2392) point at
 * a placeholder URL `/deskmail-cid-<token>-<attachment index>.x`; `resolveCidPlaceholders`
 * replaces them with the attachments' real URLs once their rows have ids. The token is random
 * per message (96 bits), so a sender cannot write a placeholder into their HTML themselves.
 */
export function prepareSafeHtml(mail: ParsedMail): SafeHtml | undefined {
  if (mail.html === undefined) return undefined
  const token = randomBytes(12).toString('hex')
  const cidMap: Record<string, string> = {}
  mail.attachments.forEach((attachment, i) => {
    const cid = attachment.contentId
    if (cid !== undefined && !Object.hasOwn(cidMap, cid)) cidMap[cid] = cidPlaceholder(token, i)
  })
  const { html, blockedRemoteImages } = sanitizeMailHtml(mail.html, { cidMap, allowRemoteImages: false })
  return { html, token, blockedRemoteImages }
}

export function cidPlaceholder(token: string, attachmentIndex: number): string {
  return `/deskmail-cid-${token}-${attachmentIndex}.x`
}

/** `safe.html` with every placeholder replaced by `url(attachment index)`. */
export function resolveCidPlaceholders(safe: SafeHtml, url: (attachmentIndex: number) => string): string {
  if (!safe.html.includes('/deskmail-cid-')) return safe.html
  // The token is hex (from prepareSafeHtml), so it needs no escaping in the pattern; anything
  // else is refused rather than turned into a pattern.
  if (!/^[0-9a-f]+$/.test(safe.token)) return safe.html
  const pattern = new RegExp(`/deskmail-cid-${safe.token}-(\\d+)\\.x`, 'g')
  return safe.html.replace(pattern, (_match, i: string) => url(Number(i)))
}
