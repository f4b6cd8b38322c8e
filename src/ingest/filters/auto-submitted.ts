import type { ParsedMail } from '../../mail/mime/types.ts'
import type { IngestFilter } from '../context.ts'
import { firstHeader, hasHeader, headerToken, rootContentType } from './mail-headers.ts'

/**
 * Automatic replies (out-of-office, vacation, autoresponders, read receipts) must never start a
 * request and never get an automatic reply, or two robots talk to each other forever.
 * @see https://www.rfc-editor.org/rfc/rfc3834#section-5 (Auto-Submitted: anything but "no")
 * @see https://www.rfc-editor.org/rfc/rfc8098#section-3 (read receipts: report-type=disposition-notification)
 */
export const autoSubmitted: IngestFilter = {
  name: 'auto-submitted',
  run(ctx) {
    const { mail } = ctx
    const reason = strongAutoReplySignal(mail)
    if (reason !== undefined) {
      ctx.flags.autoReply = reason
      ctx.suppressAutomaticMail = true
      return
    }
    // Weak hints: each alone could be on a human's mail, so alone they only stop our automatic
    // mail; together they are taken as an auto-reply (Exchange's out-of-office carries both).
    const weak: string[] = []
    const suppress = firstHeader(mail, 'x-auto-response-suppress')
    if (suppress !== undefined && /\b(all|oof|autoreply)\b/i.test(suppress)) {
      weak.push(`X-Auto-Response-Suppress: ${suppress.slice(0, 60)}`)
    }
    if (outOfOfficeSubject.test(mail.subject)) weak.push('an out-of-office subject')
    if (weak.length >= 2) {
      ctx.flags.autoReply = weak.join(' and ')
      ctx.suppressAutomaticMail = true
    } else if (weak.length === 1) {
      ctx.suppressAutomaticMail = true
      ctx.notes.push(`no automatic mail: ${weak[0]}`)
    }
  },
}

function strongAutoReplySignal(mail: ParsedMail): string | undefined {
  const autoSubmittedValue = firstHeader(mail, 'auto-submitted')
  const token = headerToken(autoSubmittedValue)
  if (token !== '' && token !== 'no') return `Auto-Submitted: ${token.slice(0, 60)}`
  // De-facto headers of vacation programs and webmail autoresponders (Yandex, GMX, cPanel...).
  for (const name of ['x-autoreply', 'x-autorespond']) {
    if (!hasHeader(mail, name)) continue
    const value = headerToken(firstHeader(mail, name))
    if (['no', 'false', '0'].includes(value)) continue
    return name === 'x-autoreply' ? 'X-Autoreply header' : 'X-Autorespond header'
  }
  if (headerToken(firstHeader(mail, 'precedence')) === 'auto_reply') return 'Precedence: auto_reply'
  const root = rootContentType(mail)
  if (root.type === 'multipart/report' && root.reportType === 'disposition-notification') {
    return 'read receipt (message disposition notification)'
  }
  return undefined
}

/**
 * Subjects autoresponders use, in the languages we see most; matched at the start, after any
 * reply prefixes. Only a weak signal (see above).
 */
export const outOfOfficeSubject = new RegExp(
  '^\\s*(?:(?:re|aw|sv|vs|antw|fw|fwd|wg|tr)\\s*:\\s*)*' +
    '(?:auto(?:matic|matische?|matisch|matiskt?)?[\\s_-]?(?:reply|response|antwort|antwoord|svar)' +
    '|autoreply|auto:|out of (?:the )?office|away from (?:the )?office|vacation reply|on vacation' +
    '|abwesenheitsnotiz|abwesend|r[ée]ponse automatique|absence du bureau|respuesta autom[áa]tica' +
    '|fuera de la oficina|risposta automatica|fuori (?:sede|ufficio)' +
    '|resposta autom[áa]tica|fora do escrit[óo]rio' +
    '|fr[åa]nvaro|autosvar|afwezig)',
  'i',
)
