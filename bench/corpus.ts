/**
 * The benchmark mailboxes, generated deterministically: the same seed always gives the same bytes,
 * so every run (and every machine) ingests the same mail and figures can be compared.
 *
 * The ingestion mailbox mixes what a service-desk mailbox receives (DESIGN.md, "Figures to reach"):
 * about 2/3 short plain-text mail, about 1/3 HTML mail of about 20 KB (the size of an Outlook or
 * Gmail HTML message with its styles and quoted history), and 0.5% with a 200 KB attachment.
 */

/** Small, fast, seedable PRNG (mulberry32): `Math.random()` cannot be seeded. */
export function prng(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const DEFAULT_SEED = 20240514
export const MAILBOX_ADDRESS = 'support@bench.example.test'

const WORDS = (
  'the a printer laptop screen password reset vpn help urgent thanks order invoice account login ' +
  'cannot please since yesterday again error message office network email phone access update ' +
  'broken slow meeting room license software install request ticket issue working not when we ' +
  'our team customer delivery refund payment shipping address changed new old monitor keyboard'
).split(' ')
const FIRST = 'Anna Ben Carla David Emma Farid Greta Hugo Ines Jonas Kira Luca Mara Nils Olga Paul'.split(' ')
const LAST = 'Schmidt Martin Rossi Novak Garcia Dubois Jensen Costa Weber Silva Kowalski Moreau'.split(' ')
const DOMAINS = ['customer.example', 'client.example.org', 'mail.example.net', 'acme.example']

function pick<T>(next: () => number, list: readonly T[]): T {
  return list[Math.floor(next() * list.length)]!
}

function sentence(next: () => number, words: number): string {
  const out: string[] = []
  for (let i = 0; i < words; i++) out.push(pick(next, WORDS))
  const s = out.join(' ')
  return s.charAt(0).toUpperCase() + s.slice(1) + '.'
}

/** A fixed base date plus one minute per message: deterministic and in arrival order. */
function dateHeader(i: number): string {
  return new Date(Date.UTC(2024, 4, 14, 7, 0, 0) + i * 60_000).toUTCString().replace('GMT', '+0000')
}

function randomBase64(next: () => number, bytes: number): string {
  const data = Buffer.allocUnsafe(bytes)
  // 4 bytes per PRNG call: generating a 40 MB attachment byte by byte would take seconds.
  for (let i = 0; i < bytes; i += 4) {
    const v = Math.floor(next() * 4294967296)
    data[i] = v & 0xff
    if (i + 1 < bytes) data[i + 1] = (v >>> 8) & 0xff
    if (i + 2 < bytes) data[i + 2] = (v >>> 16) & 0xff
    if (i + 3 < bytes) data[i + 3] = (v >>> 24) & 0xff
  }
  // RFC 2045 section 6.8: encoded lines of at most 76 characters.
  const b64 = data.toString('base64')
  const lines: string[] = []
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76))
  return lines.join('\r\n')
}

function crlf(parts: string[]): Buffer {
  return Buffer.from(parts.join('\r\n'), 'utf8')
}

export type CorpusKind = 'text' | 'html' | 'attachment'

interface Sender {
  name: string
  address: string
}

function sender(next: () => number, i: number): Sender {
  const first = pick(next, FIRST)
  const last = pick(next, LAST)
  // About one sender per 3 messages: repeat senders exercise the contact lookup, as in real mail.
  const n = Math.floor(i / 3)
  return { name: `${first} ${last}`, address: `${first.toLowerCase()}.${last.toLowerCase()}${n}@${pick(next, DOMAINS)}` }
}

function headers(i: number, from: Sender, subject: string, contentType: string, messageId?: string): string[] {
  return [
    `Return-Path: <${from.address}>`,
    `From: "${from.name}" <${from.address}>`,
    `To: Support <${MAILBOX_ADDRESS}>`,
    `Subject: ${subject}`,
    `Date: ${dateHeader(i)}`,
    `Message-ID: <${messageId ?? `bench-${i}.${DEFAULT_SEED}@${from.address.split('@')[1]}`}>`,
    'MIME-Version: 1.0',
    `Content-Type: ${contentType}`,
  ]
}

function textBody(next: () => number, sentences: number): string {
  const lines: string[] = []
  for (let s = 0; s < sentences; s++) lines.push(sentence(next, 8 + Math.floor(next() * 10)))
  return lines.join('\r\n')
}

/** An HTML body of about `bytes`: styled paragraphs and a table, as mail clients write them. */
function htmlBody(next: () => number, bytes: number): string {
  const parts: string[] = [
    '<!DOCTYPE html><html><head><meta charset="utf-8"><style>',
    'p.MsoNormal{margin:0;font-family:Calibri,sans-serif;font-size:11pt} .sig{color:#555}',
    '</style></head><body lang="EN-US" style="word-wrap:break-word">',
  ]
  let size = parts.join('').length
  while (size < bytes - 200) {
    let chunk: string
    if (next() < 0.15) {
      const rows: string[] = []
      for (let r = 0; r < 4; r++) {
        rows.push(`<tr><td style="padding:2px 6px;border:1px solid #ccc">${sentence(next, 3)}</td><td style="padding:2px 6px">${Math.floor(next() * 10000)}</td></tr>`)
      }
      chunk = `<table style="border-collapse:collapse">${rows.join('')}</table>`
    } else {
      chunk = `<p class="MsoNormal"><span style="font-size:11pt;color:#1f1f1f">${sentence(next, 10 + Math.floor(next() * 20))}</span></p>\r\n`
    }
    parts.push(chunk)
    size += chunk.length
  }
  parts.push('<p class="sig">-- <br>Sent from my desk</p></body></html>')
  return parts.join('')
}

/** The kind of message `i` of the ingestion mailbox (same seed, same kinds). */
export function corpusKind(i: number, seed = DEFAULT_SEED): CorpusKind {
  const r = prng(seed ^ Math.imul(i + 1, 0x9e3779b1))()
  if (r < 0.005) return 'attachment'
  if (r < 0.005 + 0.33) return 'html'
  return 'text'
}

/** Message `i` of the ingestion mailbox. */
export function corpusMessage(i: number, seed = DEFAULT_SEED): Buffer {
  const kind = corpusKind(i, seed)
  const next = prng(seed + 7919 * (i + 1))
  const from = sender(next, i)
  const subject = sentence(next, 3 + Math.floor(next() * 6)).slice(0, -1)
  if (kind === 'text') {
    return crlf([...headers(i, from, subject, 'text/plain; charset=utf-8'), '', textBody(next, 2 + Math.floor(next() * 10)), ''])
  }
  if (kind === 'html') {
    const html = htmlBody(next, 16_000 + Math.floor(next() * 8_000))
    return crlf([
      ...headers(i, from, subject, 'multipart/alternative; boundary="alt-boundary"'),
      '',
      '--alt-boundary',
      'Content-Type: text/plain; charset=utf-8',
      '',
      textBody(next, 6),
      '--alt-boundary',
      'Content-Type: text/html; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      html,
      '--alt-boundary--',
      '',
    ])
  }
  return withAttachment(i, from, subject, next, 200 * 1024)
}

function withAttachment(
  i: number,
  from: Sender,
  subject: string,
  next: () => number,
  attachmentBytes: number,
  messageId?: string,
): Buffer {
  const head = crlf([
    ...headers(i, from, subject, 'multipart/mixed; boundary="mixed-boundary"', messageId),
    '',
    '--mixed-boundary',
    'Content-Type: text/plain; charset=utf-8',
    '',
    textBody(next, 4),
    '--mixed-boundary',
    `Content-Type: application/pdf; name="scan-${i}.pdf"`,
    `Content-Disposition: attachment; filename="scan-${i}.pdf"`,
    'Content-Transfer-Encoding: base64',
    '',
    '',
  ])
  return Buffer.concat([head, Buffer.from(randomBase64(next, attachmentBytes), 'ascii'), Buffer.from('\r\n--mixed-boundary--\r\n')])
}

/** The first `count` messages of the ingestion mailbox. */
export function generateCorpus(count: number, seed = DEFAULT_SEED): Buffer[] {
  return Array.from({ length: count }, (_, i) => corpusMessage(i, seed))
}

/** A short plain-text message (idle-cost and many-mailbox figures, where size does not matter). */
export function smallMessage(i: number, tag = 'small'): Buffer {
  const next = prng(DEFAULT_SEED + i)
  const from = sender(next, i)
  return crlf([
    ...headers(i, from, `${tag} ${i}`, 'text/plain; charset=utf-8', `${tag}-${i}.${DEFAULT_SEED}@bench.example`),
    '',
    textBody(next, 2),
    '',
  ])
}

/** One message of about `totalBytes` raw bytes, most of it one base64 attachment (large-mail figure). */
export function largeMessage(totalBytes: number, tag = 'large'): Buffer {
  const next = prng(DEFAULT_SEED ^ totalBytes)
  const from = sender(next, 0)
  // base64 is 4/3 of the data plus CRLF every 76 characters: 78/76 × 4/3.
  const attachmentBytes = Math.floor((totalBytes - 2_000) / ((78 / 76) * (4 / 3)))
  return withAttachment(0, from, `${tag} ${totalBytes} bytes`, next, attachmentBytes, `${tag}-${totalBytes}@bench.example`)
}

/** The Message-ID (without angle brackets) of a raw message, or undefined; cheap, header only. */
export function messageIdOf(raw: Buffer): string | undefined {
  const end = raw.indexOf('\r\n\r\n')
  const head = raw.subarray(0, end < 0 ? Math.min(raw.length, 64 * 1024) : end).toString('latin1')
  return /^message-id:\s*<([^>\r\n]+)>/im.exec(head)?.[1]
}
