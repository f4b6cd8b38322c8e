/**
 * Figure 3, the product: a mailbox of N messages, all ingested already (phase 1, through the same
 * worker), then a fresh worker session syncing it with nothing new (phase 2). The counting proxy
 * between the worker and Dovecot counts the IMAP commands and bytes of phase 2, from the TCP
 * connection to the IDLE command that ends the sync.
 */
import { startCountingProxy } from '../lib/imap-proxy.ts'
import type { ProxyConnection } from '../lib/imap-proxy.ts'
import { nowMs, sleep } from '../lib/memory.ts'
import { startProduct } from '../lib/product.ts'
import type { IssuedTokens } from '../lib/product.ts'
import type { WorldInfo } from '../lib/world-info.ts'

export interface IdleProductArgs {
  world: WorldInfo
  email: string
  tokens: IssuedTokens
  expected: number
  timeoutMs: number
}

export interface IdleProductResult {
  messages: number
  /** Phase 1: the first sync, everything new. */
  initialIngest: { ms: number; rate: number }
  /** Phase 2: a sync with nothing new. */
  commands: number
  commandNames: string[]
  /** Up to IDLE. */
  bytesFromServer: number
  bytesFromClient: number
  /** TCP connect to IDLE (includes TLS, sign-in and imapflow's 100 ms auto-IDLE delay). */
  msToIdle: number
  /** Commands of the phase-2 connection before IDLE, not counting the ones of the sign-in. */
  syncCommands: number
  newCommitsInPhase2: number
}

export async function run(args: IdleProductArgs): Promise<IdleProductResult> {
  const proxy = await startCountingProxy({ upstreamPort: args.world.imap.plainPort, certPath: args.world.certPath, keyPath: args.world.keyPath })
  const product = await startProduct({ dialect: 'sqlite' })
  try {
    await product.addImapMailbox(args.world, { email: args.email, tokens: args.tokens, port: proxy.port, security: 'tls' })
    const t0 = nowMs()
    await product.startWorkers()
    await product.inst.waitForCommits(args.expected, args.timeoutMs)
    const initialMs = nowMs() - t0
    await product.stopWorkers()
    const phase1Commits = product.inst.commits.length

    proxy.reset()
    const idle = new Promise<ProxyConnection>((resolve) => proxy.events.once('idle', resolve))
    await product.startWorkers()
    const conn = await Promise.race([
      idle,
      sleep(60_000).then(() => {
        throw new Error('the worker never reached IDLE on a mailbox with nothing new')
      }),
    ])
    // Anything the worker would send after IDLE (it should not) is not part of the sync.
    await sleep(300)
    await product.stopWorkers()
    const beforeIdle = conn.commands.filter((c) => c.at <= conn.idleAt!)
    const signIn = new Set(['CAPABILITY', 'AUTHENTICATE', 'LOGIN', 'ID', 'ENABLE', 'COMPRESS', 'NAMESPACE'])
    return {
      messages: args.expected,
      initialIngest: { ms: initialMs, rate: (args.expected / initialMs) * 1000 },
      commands: beforeIdle.length,
      commandNames: beforeIdle.map((c) => c.name),
      bytesFromServer: conn.bytesBeforeIdle!.fromServer,
      bytesFromClient: conn.bytesBeforeIdle!.fromClient,
      msToIdle: conn.idleAt! - conn.openedAt,
      syncCommands: beforeIdle.filter((c) => !signIn.has(c.name) && c.name !== 'IDLE').length,
      newCommitsInPhase2: product.inst.commits.length - phase1Commits,
    }
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- product log (tail) ---\n${product.logTail()}`)
  } finally {
    await product.stop()
    await proxy.stop()
  }
}
