import type { IngestFilter } from '../context.ts'
import { firstHeader, headerToken } from './mail-headers.ts'

/**
 * Bulk and mailing-list mail still becomes a request (nothing is lost) but is flagged and never
 * answered automatically: an acknowledgement sent to a list reaches every subscriber.
 * @see https://www.rfc-editor.org/rfc/rfc3834#section-2 (do not respond to Precedence bulk/junk/list)
 * @see https://www.rfc-editor.org/rfc/rfc2919 (List-Id) and https://www.rfc-editor.org/rfc/rfc2369 (List-*)
 */
export const bulk: IngestFilter = {
  name: 'bulk',
  run(ctx) {
    const { mail } = ctx
    let reason: string | undefined
    const precedence = headerToken(firstHeader(mail, 'precedence'))
    if (['bulk', 'junk', 'list'].includes(precedence)) {
      reason = `Precedence: ${precedence}`
    } else if (mail.headers['list-id']?.length) {
      reason = `mailing list ${mail.headers['list-id'][0].slice(0, 100)}`
    } else {
      const listHeader = Object.keys(mail.headers).find((name) => name.startsWith('list-'))
      if (listHeader !== undefined) reason = `mailing-list header ${listHeader}`
    }
    if (reason === undefined) return
    ctx.flags.bulk = reason
    ctx.suppressAutomaticMail = true
  },
}
