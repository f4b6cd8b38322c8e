import { ensureDataDir, resolveKeyring } from './config/index.ts'
import type { Config } from './config/index.ts'
import { createLogger } from './shared/logger.ts'
import type { Logger } from './shared/logger.ts'
import { migrate, openStorage } from './storage/database.ts'
import { createServices } from './services.ts'
import type { Services } from './services.ts'
import { buildApp } from './web/app.ts'
import { webModules } from './web/modules.ts'
import { startWorkers } from './workers.ts'
import type { RunningWorkers, WorkerOptions } from './workers.ts'

export interface Runtime {
  services: Services
  url?: string
  stop(): Promise<void>
}

/**
 * Boots deskmail: storage (migrated), services, and the web app and/or the workers.
 * Shared by `deskmail serve|web|worker` and by the tests, which start real instances in-process.
 */
export async function startRuntime(
  config: Config,
  opts: { web: boolean; workers: boolean; logger?: Logger; worker?: Partial<WorkerOptions> },
): Promise<Runtime> {
  const logger = opts.logger ?? createLogger({ level: config.logLevel })
  ensureDataDir(config)
  const { keyring, generated, file } = resolveKeyring(config)
  if (generated) {
    logger.warn({ file }, 'DESKMAIL_SECRET_KEY is not set: generated a master key in the data directory (keep it safe and back it up; set DESKMAIL_SECRET_KEY to keep it apart from the data)')
  }
  const storage = await openStorage(config.databaseUrl, { lock: true })
  try {
    const applied = await migrate(storage)
    if (applied.length) logger.info({ migrations: applied }, 'database migrated')
  } catch (err) {
    await storage.close()
    throw err
  }
  const services = createServices({ config, storage, logger, keyring })

  const boot = await services.users.bootstrap({ email: config.adminEmail, password: config.adminPassword })
  if (boot.created) logger.info({ email: boot.created }, 'created the first administrator from DESKMAIL_ADMIN_EMAIL')
  if (boot.setupCode) {
    // Printed once so that only someone with access to the server log can claim the fresh instance.
    logger.warn(`No administrator yet. Open ${config.baseUrl}/setup and enter the setup code: ${boot.setupCode}`)
  }

  let app: Awaited<ReturnType<typeof buildApp>> | undefined
  let url: string | undefined
  let workers: RunningWorkers | undefined
  try {
    if (opts.web) {
      app = await buildApp(services, webModules)
      url = await app.listen({ port: config.port, host: config.host })
      logger.info({ url, database: storage.describe }, `deskmail portal listening; sign in at ${config.baseUrl}/login`)
    }
    if (opts.workers) workers = await startWorkers(services, opts.worker ?? {})
  } catch (err) {
    await app?.close()
    await storage.close()
    throw err
  }

  return {
    services,
    url,
    async stop() {
      await workers?.stop()
      await app?.close()
      // The parser pool's worker threads go with the pipeline.
      await services.ingest.close()
      await storage.close()
    },
  }
}
