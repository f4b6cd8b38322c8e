import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { loadConfig } from '../../src/config/index.ts'
import { createLogger } from '../../src/shared/logger.ts'
import { startRuntime } from '../../src/runtime.ts'
import type { Runtime } from '../../src/runtime.ts'
import { freshDatabaseUrl } from './dialects.ts'
import type { Dialect } from './dialects.ts'
import { HttpClient } from './http-client.ts'

export const ADMIN = { email: 'admin@example.test', password: 'correct horse battery' }

export interface TestApp {
  url: string
  runtime: Runtime
  services: Runtime['services']
  dataDir: string
  /** Every log line the instance wrote, as text. */
  logs: string[]
  client(): HttpClient
  /** A client already signed in as the admin. */
  admin(): Promise<HttpClient>
  stop(): Promise<void>
}

/**
 * Starts a real deskmail instance in-process on a free port, with a fresh database of the given
 * dialect, a fresh data dir and captured logs.
 */
export async function startTestApp(opts: { dialect?: Dialect; env?: Record<string, string>; workers?: boolean } = {}): Promise<TestApp> {
  const dialect = opts.dialect ?? 'sqlite'
  const db = await freshDatabaseUrl(dialect)
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'deskmail-data-'))
  const logs: string[] = []
  const destination = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk))
      cb()
    },
  })
  // The port must be known before start (it is part of DESKMAIL_BASE_URL, hence the redirect URI).
  const port = await freePort()
  const config = loadConfig({
    PORT: String(port),
    DESKMAIL_HOST: '127.0.0.1',
    DESKMAIL_BASE_URL: `http://127.0.0.1:${port}`,
    DESKMAIL_DATA_DIR: dataDir,
    DATABASE_URL: db.url,
    DESKMAIL_ADMIN_EMAIL: ADMIN.email,
    DESKMAIL_ADMIN_PASSWORD: ADMIN.password,
    DESKMAIL_ALLOWED_PRIVATE_HOSTS: '127.0.0.1,localhost',
    LOG_LEVEL: 'debug',
    ...opts.env,
  })
  const logger = createLogger({ level: 'debug', destination })
  const runtime = await startRuntime(config, { web: true, workers: opts.workers ?? false, logger })
  const url = `http://127.0.0.1:${port}`
  return {
    url,
    runtime,
    services: runtime.services,
    dataDir,
    logs,
    client: () => new HttpClient(url),
    async admin() {
      const c = new HttpClient(url)
      await c.signIn(ADMIN.email, ADMIN.password)
      return c
    },
    async stop() {
      await runtime.stop()
      await db.drop()
      fs.rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

export async function freePort(): Promise<number> {
  const net = await import('node:net')
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
    srv.on('error', reject)
  })
}
