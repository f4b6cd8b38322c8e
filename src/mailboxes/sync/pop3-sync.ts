import type { EmailServer } from '../../storage/schema.ts'
import { Pop3Client } from '../../mail/pop3/index.ts'
import type { Pop3AuthStyle } from '../../mail/pop3/index.ts'
import { BATCH_BYTES, MailboxSession, deferred, sleep, withTimeout } from './session.ts'
import type { RawMessage } from './session.ts'

/** POP3 batches are smaller than IMAP's: each RETR is a round trip, and a commit makes progress durable. */
const POP3_BATCH_MESSAGES = 50

/** Microsoft wants AUTH XOAUTH2, then `+`, then the response on its own line (PROVIDERS.md, SASL). */
export function pop3AuthStyle(provider: string | undefined): Pop3AuthStyle {
  return provider === 'microsoft365' || provider === 'outlook_legacy' ? 'two-step' : 'initial-response'
}

/**
 * One POP3 mailbox, polled every `poll_interval_seconds` (POP3 has no push). Each poll is one
 * session (RFC 1939 locks the maildrop while a session is open, so it is not kept open between
 * polls): UIDL, the set difference against `pop3_uidls` (RFC 1939 section 7: a UIDL is unique
 * and persistent), RETR of the new messages in batches handed to the ingest pipeline with the
 * UIDL rows and the lease guard in the same transaction, DELE only after the commit when the
 * server is set to delete, and QUIT, which is when the server actually removes them.
 */
export class Pop3MailboxSync extends MailboxSession {
  readonly protocol = 'pop3' as const
  private client: Pop3Client | undefined
  private ended = deferred()

  protected onStop(): void {
    this.ended.resolve()
    if (!this.graceful) this.client?.close()
  }

  protected async runConnection(server: EmailServer, healthy: (n: number) => Promise<void>): Promise<void> {
    this.ended = deferred()
    while (!this.stopping) {
      this.state = 'syncing'
      const n = await this.pollOnce(server)
      await healthy(n)
      this.state = 'waiting'
      await sleep(server.poll_interval_seconds * 1000, this.ended.promise)
    }
  }

  private async connect(server: EmailServer): Promise<Pop3Client> {
    const credential = await this.deps.emailServers.credentialOf(server)
    return this.withFreshLogin(server, async (login) => {
      const pop = await Pop3Client.connect({ host: server.host, port: server.port, security: server.security })
      try {
        if ('accessToken' in login) await pop.authenticateXOAuth2(login.user, login.accessToken, { style: pop3AuthStyle(credential?.provider) })
        else await pop.login(login.user, login.password)
        return pop
      } catch (err) {
        pop.close()
        throw err
      }
    })
  }

  private async pollOnce(server: EmailServer): Promise<number> {
    const pop = await this.connect(server)
    this.client = pop
    let quitted = false
    try {
      const listing = await pop.uidl()
      const known = new Set(
        (await this.deps.db.selectFrom('pop3_uidls').select('uidl').where('server_id', '=', server.id).execute()).map((r) => r.uidl),
      )
      const fresh = listing.filter((m) => !known.has(m.uid))
      const sizes = fresh.length ? new Map((await pop.list()).map((m) => [m.msg, m.size])) : new Map<number, number>()
      let count = 0
      for (const batch of pop3Batches(fresh, sizes)) {
        if (this.stopping) break
        const raws: Array<RawMessage & { uidl: string }> = []
        for (const m of batch) raws.push({ uidl: m.uid, sourceKey: `pop3:${m.uid}`, raw: await pop.retr(m.msg) })
        const outcomes = await this.deps.ingest.ingestBatch(
          server,
          raws.map(({ sourceKey, raw }) => ({ sourceKey, raw })),
          {
            beforeCommit: async (trx) => {
              await this.guard(trx)
              await trx
                .insertInto('pop3_uidls')
                .values(raws.map((r) => ({ server_id: server.id, uidl: r.uidl, seen_at: Date.now() })))
                .onConflict((oc) => oc.columns(['server_id', 'uidl']).doNothing())
                .execute()
            },
          },
        )
        const fresh = outcomes.filter((o) => o.outcome !== 'duplicate').length
        this.log.debug({ messages: raws.length, fresh }, 'batch committed')
        count += fresh
        if (server.ack_action === 'delete') for (const m of batch) await pop.dele(m.msg)
      }
      // Known messages still on the server with deletion on: an earlier QUIT did not complete
      // (RFC 1939 section 6: DELE takes effect only at QUIT), delete them now.
      if (server.ack_action === 'delete') for (const m of listing) if (known.has(m.uid)) await pop.dele(m.msg)
      await this.forgetGone(server, known, listing.map((m) => m.uid))
      quitted = true
      await withTimeout(pop.quit(), 30_000, 'POP3 QUIT')
      return count
    } finally {
      this.client = undefined
      if (!quitted) pop.close()
    }
  }

  /** UIDLs no longer on the server never come back: keep the table as small as the mailbox. */
  private async forgetGone(server: EmailServer, known: Set<string>, present: string[]): Promise<void> {
    const here = new Set(present)
    const gone = [...known].filter((u) => !here.has(u))
    for (let i = 0; i < gone.length; i += 500) {
      await this.deps.db
        .deleteFrom('pop3_uidls')
        .where('server_id', '=', server.id)
        .where('uidl', 'in', gone.slice(i, i + 500))
        .execute()
    }
  }
}

function pop3Batches<T extends { msg: number }>(messages: T[], sizes: Map<number, number>): T[][] {
  const out: T[][] = []
  let current: T[] = []
  let bytes = 0
  for (const m of messages) {
    const size = sizes.get(m.msg) ?? 0
    if (current.length && (current.length >= POP3_BATCH_MESSAGES || bytes + size > BATCH_BYTES)) {
      out.push(current)
      current = []
      bytes = 0
    }
    current.push(m)
    bytes += size
  }
  if (current.length) out.push(current)
  return out
}
