import { AppError } from '../../shared/errors.ts'

/**
 * The request number in subjects: `[#123]`. Our outgoing mail carries it so that a reply still
 * lands in its request when the customer's client drops In-Reply-To and References
 * (DESIGN.md "Threading and hygiene"). Found anywhere in the subject, so `Re: [#123] ...`,
 * `AW: [#123]` and `Automatic reply: [#123] ...` all match; `[#123abc]`, `[#]` and `[#0]` do not.
 */
const tokenPattern = /\[#(\d{1,9})\]/g

/** The request number of the first `[#N]` token in a subject, if any. */
export function subjectRequestNumber(subject: string): number | undefined {
  for (const match of subject.matchAll(tokenPattern)) {
    const n = Number(match[1])
    if (n >= 1) return n
  }
  return undefined
}

/**
 * The subject with `[#n] ` in front, unless it already carries `[#n]`. Line breaks and other
 * control characters (possible in a decoded inbound subject) become spaces, so the result is
 * always safe as a header value.
 */
export function formatRequestSubject(n: number, subject: string): string {
  if (!Number.isSafeInteger(n) || n < 1 || n > 999_999_999) {
    throw new AppError('invalid_request_number', `a request number is from 1 to 999999999, not ${n}`)
  }
  const clean = subject
    .replace(/\p{Cc}/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim()
  for (const match of clean.matchAll(tokenPattern)) {
    if (Number(match[1]) === n) return clean
  }
  return clean === '' ? `[#${n}]` : `[#${n}] ${clean}`
}
