/**
 * Attachment file names come from the sender and end up in the portal, in `Content-Disposition`
 * of downloads (RFC 6266) and in agents' download folders. We keep a display name only (files
 * are stored under generated names), made harmless for every common file system.
 * @see https://www.rfc-editor.org/rfc/rfc6266#section-4.3 (recipients must drop path information)
 * @see https://learn.microsoft.com/windows/win32/fileio/naming-a-file (reserved names and characters)
 */

/** Longest name kept, in UTF-8 bytes (most file systems allow 255; room is left for a " (2)"). */
export const maxAttachmentNameBytes = 200

/** An extension longer than this is not an extension worth keeping when truncating. */
const maxExtensionBytes = 24

// Windows refuses these as a whole name or as the part before the first dot ("con.txt").
const windowsReservedStem = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)$/i

const utf8 = (value: string): number => Buffer.byteLength(value, 'utf8')

/** Cuts to at most `maxBytes` UTF-8 bytes on a code point boundary. */
function cutToBytes(value: string, maxBytes: number): string {
  let out = ''
  let bytes = 0
  for (const char of value) {
    const size = utf8(char)
    if (bytes + size > maxBytes) break
    out += char
    bytes += size
  }
  return out
}

function clean(name: string | undefined): string {
  if (typeof name !== 'string') return ''
  let value = name.normalize('NFC')
  // Control characters (NUL included) and invisible format characters: bidi overrides such as
  // U+202E turn "invoice\u202Efdp.exe" into a name that displays as "invoiceexe.pdf".
  value = value.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, '')
  // Basename only: both separators, since a name written on Windows arrives with backslashes.
  const segments = value.split(/[/\\]/).map((segment) => segment.trim())
  value = segments.filter((segment) => segment !== '').pop() ?? ''
  // Characters Windows forbids in names (':' also makes NTFS alternate data streams).
  value = value.replace(/[<>:"|?*]/g, '_')
  value = value.replace(/\s+/g, ' ')
  // No hidden files, no "..": leading dots go; Windows drops trailing dots and spaces itself.
  value = value.replace(/^[.\s]+/, '').replace(/[.\s]+$/, '')
  if (value === '') return ''
  const firstDot = value.indexOf('.')
  const stem = firstDot < 0 ? value : value.slice(0, firstDot)
  if (windowsReservedStem.test(stem.trim())) value = `_${value}`
  if (utf8(value) > maxAttachmentNameBytes) {
    const lastDot = value.lastIndexOf('.')
    const extension = lastDot > 0 ? value.slice(lastDot) : ''
    if (extension !== '' && utf8(extension) <= maxExtensionBytes) {
      const base = cutToBytes(value.slice(0, lastDot), maxAttachmentNameBytes - utf8(extension)).trimEnd()
      value = base + extension
    } else {
      value = cutToBytes(value, maxAttachmentNameBytes).replace(/[.\s]+$/, '')
    }
  }
  return value
}

/**
 * A safe display name for an attachment: basename only (no `../`, no drive or directory),
 * no NUL / control / bidi characters, no leading dots, no Windows-reserved name, at most
 * `maxAttachmentNameBytes` UTF-8 bytes with the extension kept. Falls back to `fallback`
 * (itself cleaned) when nothing usable is left.
 */
export function sanitizeAttachmentName(name?: string, fallback = 'attachment'): string {
  return clean(name) || clean(fallback) || 'attachment'
}
