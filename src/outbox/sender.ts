import type { Services } from '../services.ts'
import type { BackgroundTask, WorkerOptions } from '../workers.ts'
import type { Logger } from '../shared/logger.ts'
import type { OutboxService } from './outbox.ts'

/** How often the sender looks for due mail when nothing woke it up (other processes queue too). */
export const OUTBOX_POLL_MS = 2_000

/**
 * The outbox sender: claims due items and sends them (see OutboxService.processDue for the rules:
 * attempt recorded before sending, never twice, retries with backoff, Reconnect releases waiting
 * items). It wakes up at once when this process queues mail, and polls every few seconds for mail
 * queued by other processes, for retries that fall due, and for credentials connected again.
 */
export class OutboxSender implements BackgroundTask {
  readonly name = 'outbox-sender'
  #stopped = true
  #loop: Promise<void> | undefined
  #wake: (() => void) | undefined
  #pending = false
  #unsubscribe: (() => void) | undefined

  constructor(
    private readonly outbox: OutboxService,
    private readonly logger: Logger,
    private readonly opts: { pollMs?: number; batch?: number } = {},
  ) {}

  async start(): Promise<void> {
    if (!this.#stopped) return
    this.#stopped = false
    this.#unsubscribe = this.outbox.onQueued(() => this.wake())
    this.#loop = this.run()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    this.#unsubscribe?.()
    this.wake()
    await this.#loop
    this.outbox.close()
  }

  /** Look for work now instead of at the next poll. */
  wake(): void {
    this.#pending = true
    this.#wake?.()
  }

  private async run(): Promise<void> {
    while (!this.#stopped) {
      this.#pending = false
      let attempted = 0
      try {
        attempted = await this.outbox.processDue(this.opts.batch ?? 10)
      } catch (err) {
        // A database hiccup must not end the sender: log it and try again at the next poll.
        this.logger.error({ err: { message: (err as Error).message, code: (err as { code?: string }).code } }, 'outbox round failed')
      }
      if (this.#stopped) break
      // A full batch means more may be due: go on at once.
      if (attempted > 0 || this.#pending) continue
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.opts.pollMs ?? OUTBOX_POLL_MS)
        this.#wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.#wake = undefined
    }
  }
}

export function createOutboxSender(services: Services, _opts: WorkerOptions): OutboxSender {
  return new OutboxSender(services.outbox, services.logger.child({ component: 'outbox-sender' }))
}
