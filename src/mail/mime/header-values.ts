import { isUtf8 } from 'node:buffer'

/**
 * Turning raw header lines into decoded strings. RFC 5322 headers are 7-bit, but real mail carries
 * raw UTF-8 (RFC 6532 allows it) and, from old mailers, raw Latin-1 / windows-1252 bytes. Node's
 * TextDecoder treats windows-1252 as ISO-8859-1 (0x80-0x9F become C1 controls), so the 32 code
 * points where the two differ are mapped here.
 * @see https://www.rfc-editor.org/rfc/rfc6532#section-3.2
 * @see https://encoding.spec.whatwg.org/index-windows-1252.txt
 */
const windows1252High = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d,
  0x17d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a,
  0x153, 0x9d, 0x17e, 0x178,
]

export function decodeWindows1252(bytes: Uint8Array): string {
  let out = ''
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]
    out += String.fromCharCode(b >= 0x80 && b <= 0x9f ? windows1252High[b - 0x80] : b)
  }
  return out
}

export type EightBitCharset = 'utf-8' | 'windows-1252'

/**
 * Decodes a header value given as a "binary" string (one char per raw byte, as mailsplit keeps
 * header lines). Pure ASCII is returned as is; raw 8-bit bytes are read as UTF-8 when they form
 * valid UTF-8, else as windows-1252, and `eightBit` says which.
 */
export function decodeRawHeaderBytes(binary: string): { value: string; eightBit?: EightBitCharset } {
  // Fast path: nearly every header is ASCII.
  if (!/[\x80-\xff]/.test(binary)) return { value: binary }
  const bytes = Buffer.from(binary, 'latin1')
  if (isUtf8(bytes)) return { value: bytes.toString('utf8'), eightBit: 'utf-8' }
  return { value: decodeWindows1252(bytes), eightBit: 'windows-1252' }
}

/**
 * Splits one raw header line (folding included) into its lower-case name and its unfolded value.
 * Unfolding removes the CRLF before whitespace and keeps the whitespace (RFC 5322 2.2.3); stray
 * CR/LF that are not folding are replaced by a space so that no value ever contains a line break.
 */
export function splitHeaderLine(line: string): { name: string; value: string } {
  const colon = line.indexOf(':')
  if (colon < 0) return { name: line.trim().toLowerCase(), value: '' }
  const name = line.slice(0, colon).trim().toLowerCase()
  const value = line
    .slice(colon + 1)
    .replace(/\r?\n(?=[ \t])/g, '')
    .replace(/[\r\n]+/g, ' ')
    .trim()
  return { name, value }
}

/** Cuts a string to `max` UTF-16 units without splitting a surrogate pair. */
export function truncateString(value: string, max: number): string {
  if (value.length <= max) return value
  let end = max
  const code = value.charCodeAt(end - 1)
  if (code >= 0xd800 && code <= 0xdbff) end--
  return value.slice(0, end)
}
