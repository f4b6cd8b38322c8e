/**
 * Entry of every measurement child process (started by `runChild` in bench/lib/ipc.ts). It loads
 * only the task it is asked to run, so the process holds the product (or the baseline) and
 * nothing of the orchestrator: its RSS and CPU figures are its own.
 */
import { onParentMessage, sendError, sendResult } from './lib/ipc.ts'

const tasks: Record<string, () => Promise<{ run(args: any): Promise<unknown> }>> = {
  'imap-fetch': () => import('./tasks/imap-fetch.ts'),
  mailparser: () => import('./tasks/mailparser.ts'),
  'ingest-product': () => import('./tasks/ingest-product.ts'),
  'push-product': () => import('./tasks/push-product.ts'),
  'idle-product': () => import('./tasks/idle-product.ts'),
  'large-product': () => import('./tasks/large-product.ts'),
  'large-baseline': () => import('./tasks/large-baseline.ts'),
  'many-product': () => import('./tasks/many-product.ts'),
  'many-baseline': () => import('./tasks/many-baseline.ts'),
}

// The orchestrator went away (crashed, killed): nothing left to report to.
process.on('disconnect', () => process.exit(2))

process.on('message', async (m: any) => {
  if (m?.type !== 'run') return onParentMessage(m)
  try {
    const load = tasks[m.task]
    if (!load) throw new Error(`unknown benchmark task "${m.task}"`)
    const task = await load()
    const value = await task.run(m.args)
    await sendResult(value)
    process.exit(0)
  } catch (err) {
    await sendError(err)
    process.exit(1)
  }
})
