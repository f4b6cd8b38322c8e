/**
 * How stored attachments and raw mail are handed to a browser. Both come from senders: a file
 * served from our origin with its declared type could be HTML or SVG that runs script in the
 * portal's origin. Only raster images are shown as what they are; everything else is a download
 * of `application/octet-stream` (and the portal sends `X-Content-Type-Options: nosniff`).
 */

/** Where an attachment is served, and what the `cid:` images of stored HTML point at. */
export function attachmentUrl(requestId: number, attachmentId: number | string): string {
  return `/requests/${requestId}/attachments/${attachmentId}`
}

/** Raster image types a browser shows without running anything; SVG is not one of them. */
const inlineImageTypes = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/bmp'])

const aliases: Record<string, string> = { 'image/jpg': 'image/jpeg', 'image/pjpeg': 'image/jpeg' }

export interface DownloadHeaders {
  contentType: string
  contentDisposition: string
}

/**
 * `Content-Type` and `Content-Disposition` for an attachment: raster images inline with their
 * image type (an `<img>` of the mail body loads the same URL), anything else as a download.
 * `forceDownload` makes images downloads too.
 */
export function attachmentHeaders(
  attachment: { filename: string; contentType: string },
  options: { forceDownload?: boolean } = {},
): DownloadHeaders {
  const declared = attachment.contentType.toLowerCase()
  const type = aliases[declared] ?? declared
  if (inlineImageTypes.has(type)) {
    const disposition = options.forceDownload ? 'attachment' : 'inline'
    return { contentType: type, contentDisposition: contentDisposition(disposition, attachment.filename) }
  }
  return { contentType: 'application/octet-stream', contentDisposition: contentDisposition('attachment', attachment.filename) }
}

/**
 * A `Content-Disposition` value with an ASCII `filename` fallback and the exact name as
 * `filename*` (UTF-8, percent-encoded).
 * @see https://www.rfc-editor.org/rfc/rfc6266#section-4.3 (both parameters; recipients prefer filename*)
 * @see https://www.rfc-editor.org/rfc/rfc6266#appendix-D (no '%' or '\' in the fallback: some agents decode them)
 * @see https://www.rfc-editor.org/rfc/rfc8187#section-3.2.1 (attr-char: what may stay unencoded)
 */
export function contentDisposition(type: 'inline' | 'attachment', filename: string): string {
  const name = filename.replace(/[\p{Cc}]/gu, '') || 'attachment'
  const fallback = name.replace(/[^\x20-\x7e]|["\\%]/g, '_')
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
  return `${type}; filename="${fallback}"; filename*=UTF-8''${encoded}`
}

/** Whether an image of this type may be shown inside the portal (never SVG). */
export function isInlineImageType(contentType: string): boolean {
  const lower = contentType.toLowerCase()
  return inlineImageTypes.has(aliases[lower] ?? lower)
}
