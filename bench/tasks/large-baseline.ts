/**
 * Figure 4, baseline: a plain imapflow client downloading the same large message
 * (`fetchOne(uid, { source: true })`, the message held as one Buffer, as every imapflow user gets it).
 */
import { ImapFlow } from 'imapflow'
import { RssSampler, peakRssMb, sleep } from '../lib/memory.ts'
import type { WorldInfo } from '../lib/world-info.ts'

export interface LargeBaselineArgs {
  world: WorldInfo
  email: string
  accessToken: string
}

export interface LargeBaselineResult {
  beforeMb: number
  peakMb: number
  growthMb: number
  bytes: number
}

export async function run(args: LargeBaselineArgs): Promise<LargeBaselineResult> {
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
    await sleep(1_000)
    const settle = new RssSampler(50).start()
    await sleep(1_000)
    const before = settle.stop()
    const maxBefore = peakRssMb()
    const sampler = new RssSampler(10).start()
    const msg = await client.fetchOne('*', { uid: true, source: true })
    const bytes = msg ? (msg.source?.length ?? 0) : 0
    await sleep(500)
    const during = sampler.stop()
    const maxAfter = peakRssMb()
    const peak = maxAfter > maxBefore ? Math.max(maxAfter, during.maxMb) : during.maxMb
    return { beforeMb: before.meanMb, peakMb: peak, growthMb: peak - before.meanMb, bytes }
  } finally {
    await client.logout().catch(() => client.close())
  }
}
