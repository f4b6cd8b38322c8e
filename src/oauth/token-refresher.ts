import type { Logger } from '../shared/logger.ts'
import type { BackgroundTask } from '../workers.ts'
import { REFRESH_AHEAD_MS } from './credential-store.ts'
import type { CredentialStore } from './credential-store.ts'

export interface TokenRefresherOptions {
  /** How often the store is asked which tokens expire soon. */
  intervalMs?: number
  /** Refreshes in flight at once in this process. */
  concurrency?: number
  /** Refreshes are done by this long before expiry at the latest (the connections' minimum validity is 60 s). */
  marginMs?: number
  random?: () => number
  now?: () => number
}

/**
 * Refreshes access tokens ahead of expiry (DESIGN.md, Credentials), so that a connection never
 * starts with a dying token and a (re)connect does not wait for the provider.
 *
 * Credentials that expire together (200 authorized in the same minute) are not refreshed together:
 * each gets a random moment between now and `marginMs` before its expiry, and at most
 * `concurrency` refreshes run at once. Across workers the credential store's claim makes each
 * refresh happen once; a credential another worker refreshed meanwhile is skipped (the store is
 * asked for a token valid for the whole horizon, which it returns without a refresh).
 */
export class TokenRefresher implements BackgroundTask {
  readonly name = 'token-refresher'
  private readonly scheduled = new Map<number, NodeJS.Timeout>()
  private readonly queue: number[] = []
  private readonly inFlight = new Set<number>()
  private readonly running = new Set<Promise<void>>()
  private timer: NodeJS.Timeout | undefined
  private stopping = false
  private readonly intervalMs: number
  private readonly concurrency: number
  private readonly marginMs: number
  private readonly random: () => number
  private readonly now: () => number

  constructor(
    private readonly credentials: CredentialStore,
    private readonly logger: Logger,
    opts: TokenRefresherOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 30_000
    this.concurrency = opts.concurrency ?? 4
    this.marginMs = opts.marginMs ?? 90_000
    this.random = opts.random ?? Math.random
    this.now = opts.now ?? Date.now
  }

  async start(): Promise<void> {
    this.stopping = false
    void this.tick()
  }

  async stop(): Promise<void> {
    this.stopping = true
    clearTimeout(this.timer)
    for (const t of this.scheduled.values()) clearTimeout(t)
    this.scheduled.clear()
    this.queue.length = 0
    await Promise.allSettled([...this.running])
  }

  /** How many credentials wait for their moment or are being refreshed (for tests and diagnostics). */
  get pending(): number {
    return this.scheduled.size + this.queue.length + this.inFlight.size
  }

  /** Asks the store what is due and gives each credential its moment. Exposed for tests. */
  async tick(): Promise<void> {
    try {
      const due = await this.credentials.dueForRefresh(500)
      const now = this.now()
      for (const { id, expiresAt } of due) {
        if (this.scheduled.has(id) || this.inFlight.has(id) || this.queue.includes(id)) continue
        const window = Math.max(0, expiresAt - this.marginMs - now)
        const delay = Math.floor(this.random() * window)
        const t = setTimeout(() => {
          this.scheduled.delete(id)
          this.enqueue(id)
        }, delay)
        t.unref()
        this.scheduled.set(id, t)
      }
    } catch (err) {
      this.logger.error({ err }, 'token refresher: listing due credentials failed')
    } finally {
      if (!this.stopping) {
        // A little jitter so that workers started together do not query together forever.
        this.timer = setTimeout(() => void this.tick(), Math.round(this.intervalMs * (0.9 + 0.2 * this.random())))
        this.timer.unref()
      }
    }
  }

  private enqueue(id: number): void {
    if (this.stopping) return
    this.queue.push(id)
    this.drain()
  }

  private drain(): void {
    while (!this.stopping && this.inFlight.size < this.concurrency && this.queue.length) {
      const id = this.queue.shift()!
      this.inFlight.add(id)
      const p = this.refreshOne(id).finally(() => {
        this.inFlight.delete(id)
        this.running.delete(p)
        this.drain()
      })
      this.running.add(p)
    }
  }

  private async refreshOne(id: number): Promise<void> {
    try {
      // Returns the stored token without a request when another worker refreshed it meanwhile.
      await this.credentials.accessToken(id, REFRESH_AHEAD_MS)
    } catch (err) {
      // The store recorded the outcome (degraded with backoff, or needs re-authorization).
      this.logger.warn({ credentialId: id, errorCode: (err as { code?: string }).code }, 'token refresh ahead of expiry failed')
    }
  }
}
