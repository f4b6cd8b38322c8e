/**
 * Baseline: raw imapflow download of the whole mailbox, `fetch('1:*', { uid: true, source: true })`
 * over TLS, nothing done with the bytes. The ceiling for any IMAP client in Node on this machine.
 */
import { ImapFlow } from 'imapflow'
import { median } from '../lib/stats.ts'
import { peakRssMb } from '../lib/memory.ts'
import type { WorldInfo } from '../lib/world-info.ts'

export interface ImapFetchArgs {
  world: WorldInfo
  email: string
  accessToken: string
  expected: number
  /** Timed runs after one untimed warm-up run (Dovecot's index and the page cache warm). */
  runs: number
}

export interface ImapFetchResult {
  rates: number[]
  medianRate: number
  messages: number
  bytes: number
  peakRssMb: number
}

export async function run(args: ImapFetchArgs): Promise<ImapFetchResult> {
  const client = new ImapFlow({
    host: args.world.imap.host,
    port: args.world.imap.tlsPort,
    secure: true,
    auth: { user: args.email, accessToken: args.accessToken },
    logger: false,
  })
  client.on('error', () => {})
  await client.connect()
  try {
    await client.mailboxOpen('INBOX')
    const once = async () => {
      let messages = 0
      let bytes = 0
      const t = performance.now()
      for await (const m of client.fetch('1:*', { uid: true, source: true })) {
        messages++
        bytes += m.source?.length ?? 0
      }
      return { messages, bytes, ms: performance.now() - t }
    }
    const warm = await once()
    if (warm.messages !== args.expected) throw new Error(`the mailbox holds ${warm.messages} messages, expected ${args.expected}`)
    const rates: number[] = []
    let bytes = 0
    for (let i = 0; i < args.runs; i++) {
      const r = await once()
      rates.push((r.messages / r.ms) * 1000)
      bytes = r.bytes
    }
    return { rates, medianRate: median(rates)!, messages: warm.messages, bytes, peakRssMb: peakRssMb() }
  } finally {
    await client.logout().catch(() => client.close())
  }
}
