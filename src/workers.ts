import type { Services } from './services.ts'
import { createOutboxSender } from './outbox/sender.ts'
import { MailboxSupervisor } from './mailboxes/supervisor.ts'
import { TokenRefresher } from './oauth/token-refresher.ts'

export interface WorkerOptions {
  /** The most mailboxes this process holds at once. */
  concurrency: number
  /** A stable id for this worker process (host:pid:random by default). */
  id?: string
}

export interface RunningWorkers {
  stop(): Promise<void>
}

/** Background work of one process: mailbox supervisor, outbox sender, token refresher. */
export interface BackgroundTask {
  name: string
  start(): Promise<void>
  stop(): Promise<void>
}

/** Tasks register here as the modules that own them are wired (see `taskFactories`). */
export const taskFactories: Array<(services: Services, opts: WorkerOptions) => BackgroundTask> = []
taskFactories.push(createOutboxSender)
taskFactories.push(
  (services) => new TokenRefresher(services.credentials, services.logger.child({ component: 'token-refresher' })),
  (services, opts) => new MailboxSupervisor(services, opts),
)

export async function startWorkers(services: Services, opts: Partial<WorkerOptions>): Promise<RunningWorkers> {
  const options: WorkerOptions = { concurrency: opts.concurrency ?? services.config.workerConcurrency, id: opts.id }
  const tasks = taskFactories.map((make) => make(services, options))
  for (const t of tasks) {
    await t.start()
    services.logger.info({ task: t.name }, 'worker task started')
  }
  return {
    async stop() {
      // Reverse order: stop taking new work first, then hand back what is held.
      for (const t of [...tasks].reverse()) await t.stop().catch((err) => services.logger.error({ err, task: t.name }, 'task stop failed'))
    },
  }
}
