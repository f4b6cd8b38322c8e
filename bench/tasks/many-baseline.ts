/**
 * Figure 5, baseline: the same N mailboxes held by N plain imapflow connections in IDLE in one
 * process (no database, no supervisor): the cost of the connections themselves.
 */
import { ImapFlow } from 'imapflow'
import { measureWindow, sleep } from '../lib/memory.ts'
import type { ManyMeasurement } from '../lib/memory.ts'
import type { WorldInfo } from '../lib/world-info.ts'

export interface ManyBaselineArgs {
  world: WorldInfo
  mailboxes: Array<{ email: string; accessToken: string }>
  windowMs: number
}

export async function run(args: ManyBaselineArgs): Promise<ManyMeasurement> {
  const clients: ImapFlow[] = []
  try {
    // 50 at a time, as a worker's burst of connects is bounded by the server anyway.
    for (let i = 0; i < args.mailboxes.length; i += 50) {
      await Promise.all(
        args.mailboxes.slice(i, i + 50).map(async (m) => {
          const client = new ImapFlow({
            host: args.world.imap.host,
            port: args.world.imap.tlsPort,
            secure: true,
            auth: { user: m.email, accessToken: m.accessToken },
            logger: false,
          })
          client.on('error', () => {})
          clients.push(client)
          await client.connect()
          await client.mailboxOpen('INBOX')
          void client.idle().catch(() => {})
        }),
      )
    }
    await sleep(2_000)
    return await measureWindow(args.windowMs, args.mailboxes.length)
  } finally {
    await Promise.all(clients.map((c) => c.logout().catch(() => c.close())))
  }
}
