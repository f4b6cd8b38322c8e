import { messageIdDomain } from '../../mail/mime/message-id.ts'
import type { IngestFilter } from '../context.ts'

/**
 * Our own mail coming back into the mailbox (a copy of what we sent, a customer's auto-forward of
 * it, the mailbox writing to itself) would start a loop: reply → ingest → reply. It is ignored.
 * Detected by a From that is one of our addresses, or a Message-ID in the domain our outgoing
 * Message-IDs use (DESIGN.md "Threading and hygiene").
 */
export const ownMail: IngestFilter = {
  name: 'own-mail',
  run(ctx) {
    const { mailbox, mail } = ctx
    const own = new Set([mailbox.emailAddress, ...mailbox.ownAddresses].map((a) => a.trim().toLowerCase()))
    const from = mail.from?.address.toLowerCase()
    const ownDomain = mailbox.ownMessageIdDomain.trim().toLowerCase()
    let reason: string | undefined
    if (from !== undefined && own.has(from)) {
      reason = `sent from our own address ${from}`
    } else if (ownDomain !== '' && messageIdDomain(mail.messageId ?? '') === ownDomain) {
      reason = `its Message-ID is one of ours (@${ownDomain})`
    }
    if (reason === undefined) return
    ctx.flags.ownMail = reason
    ctx.suppressAutomaticMail = true
    ctx.outcome = { kind: 'ignored', reason: `mail loop: our own mail came back (${reason})` }
  },
}
