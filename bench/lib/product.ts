/**
 * deskmail itself, started inside a benchmark child the way `deskmail worker` starts it
 * (`startRuntime` + `startWorkers`, the real supervisor, IMAP sync and ingest pipeline), on a fresh
 * SQLite file or a fresh PostgreSQL database. Mailboxes are added through the services the portal
 * uses (form validation, EmailServerService.create, CredentialStore.storeAuthorization), with
 * tokens the stand-in OAuth server issued, instead of clicking through the consent screen.
 *
 * Instrumentation is benchmark-only and from the outside: the pipeline's and the sync's methods
 * are wrapped on the instances (and prototypes) to timestamp commits and add up the time spent in
 * each stage. Nothing in src/ knows about it; a renamed method only loses its stage line.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { Worker } from 'node:worker_threads'
import { loadConfig } from '../../src/config/index.ts'
import { createLogger } from '../../src/shared/logger.ts'
import { generateKeyringValue } from '../../src/shared/secret-box.ts'
import { startRuntime } from '../../src/runtime.ts'
import type { Runtime } from '../../src/runtime.ts'
import { startWorkers } from '../../src/workers.ts'
import type { RunningWorkers } from '../../src/workers.ts'
import { ImapMailboxSync } from '../../src/mailboxes/sync/imap-sync.ts'
import type { EmailServer } from '../../src/storage/schema.ts'
import { createTestDatabase } from '../../test/harness/postgres.ts'
import { messageIdOf } from '../corpus.ts'
import { emitToParent } from './ipc.ts'
import { nowMs, waitFor } from './memory.ts'
import type { WorldInfo } from './world-info.ts'

export type Dialect = 'sqlite' | 'postgres'

export interface IssuedTokens {
  access_token: string
  refresh_token: string
  expires_in: number
}

export interface MailboxSpec {
  email: string
  tokens: IssuedTokens
  /** Default: the world's IMAPS port (TLS, as in production). */
  port?: number
  security?: 'tls' | 'starttls' | 'none'
}

/** Time spent in one stage: calls, wall-clock sum (stages overlap: fetch of batch k+1 runs during ingest of k). */
export interface StageTime {
  calls: number
  ms: number
}

export interface CommitRecord {
  /** Epoch ms with sub-ms resolution, taken when `ingestBatch` resolved (after COMMIT). */
  at: number
  serverId: number
  messageId: string | undefined
  outcome: string
}

export class Instrumentation {
  readonly commits: CommitRecord[] = []
  readonly stages = new Map<string, StageTime>()
  readonly batchSizes: number[] = []
  private waiters: Array<() => void> = []

  add(stage: string, ms: number): void {
    const s = this.stages.get(stage) ?? { calls: 0, ms: 0 }
    s.calls++
    s.ms += ms
    this.stages.set(stage, s)
  }

  recordBatch(serverId: number, raws: Buffer[], outcomes: Array<{ outcome: string }>, at: number): void {
    this.batchSizes.push(raws.length)
    raws.forEach((raw, i) => this.commits.push({ at, serverId, messageId: messageIdOf(raw), outcome: outcomes[i]?.outcome ?? '?' }))
    for (const w of this.waiters.splice(0)) w()
  }

  /** Resolves once at least `n` messages are committed, or throws after `timeoutMs`. */
  async waitForCommits(n: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.commits.length < n) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`only ${this.commits.length} of ${n} messages committed after ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1_000))
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }

  stageReport(): Record<string, StageTime> {
    return Object.fromEntries([...this.stages].map(([k, v]) => [k, { calls: v.calls, ms: Math.round(v.ms) }]))
  }

  reset(): void {
    this.commits.length = 0
    this.batchSizes.length = 0
    this.stages.clear()
  }
}

/** Wraps `obj[name]` (an async method) so that the time of every call is added to `stage`. */
function timeMethod(obj: any, name: string, stage: string, inst: Instrumentation): boolean {
  const original = obj?.[name]
  if (typeof original !== 'function') return false
  obj[name] = async function (this: unknown, ...args: unknown[]) {
    const t = performance.now()
    try {
      return await original.apply(this, args)
    } finally {
      inst.add(stage, performance.now() - t)
    }
  }
  return true
}

export interface Product {
  dialect: Dialect
  runtime: Runtime
  services: Runtime['services']
  inst: Instrumentation
  /** Stages that could not be instrumented (a method was renamed). */
  uninstrumented: string[]
  addImapMailbox(world: WorldInfo, spec: MailboxSpec): Promise<EmailServer>
  startWorkers(): Promise<void>
  stopWorkers(): Promise<void>
  /** Resolves when every given server has had a successful sync (then it IDLEs). */
  waitSynced(serverIds: number[], timeoutMs: number): Promise<void>
  logTail(): string
  stop(): Promise<void>
}

// The sync's own fetch of message bodies is wrapped once per process, on the prototype.
let instrumentedSync: Instrumentation | undefined

export async function startProduct(opts: { dialect: Dialect; logLevel?: string }): Promise<Product> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'deskmail-bench-'))
  const db =
    opts.dialect === 'postgres'
      ? await createTestDatabase()
      : { url: `sqlite:${path.join(dataDir, 'deskmail.sqlite')}`, drop: async () => {} }
  // If this child is killed (timeout), the orchestrator removes what it leaves behind.
  if (process.send) emitToParent('leftovers', { dir: dataDir, pgDatabase: opts.dialect === 'postgres' ? (db as { name?: string }).name : undefined })
  const logLines: string[] = []
  const destination = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(String(chunk))
      if (logLines.length > 200) logLines.splice(0, logLines.length - 200)
      cb()
    },
  })
  const config = loadConfig({
    PORT: '0',
    DESKMAIL_HOST: '127.0.0.1',
    DESKMAIL_BASE_URL: 'http://127.0.0.1:3000',
    DESKMAIL_DATA_DIR: dataDir,
    DATABASE_URL: db.url,
    DESKMAIL_SECRET_KEY: generateKeyringValue(),
    DESKMAIL_ALLOWED_PRIVATE_HOSTS: '127.0.0.1,localhost',
    LOG_LEVEL: opts.logLevel ?? 'warn',
  })
  const logger = createLogger({ level: opts.logLevel ?? 'warn', destination })
  const runtime = await startRuntime(config, { web: false, workers: false, logger })
  const services = runtime.services
  const inst = new Instrumentation()
  const uninstrumented: string[] = []

  // Commit timestamps: `ingestBatch` resolves after COMMIT (cursor advance included).
  const ingest = services.ingest as any
  const ingestBatch = ingest.ingestBatch.bind(ingest)
  ingest.ingestBatch = async (server: EmailServer, messages: Array<{ raw: Buffer }>, hooks?: unknown) => {
    const t = performance.now()
    const outcomes = await ingestBatch(server, messages, hooks)
    inst.add('ingestBatch (total)', performance.now() - t)
    inst.recordBatch(
      server.id,
      messages.map((m) => m.raw),
      outcomes,
      nowMs(),
    )
    return outcomes
  }
  for (const [method, stage] of [
    ['prepareAll', 'parse + sanitize (parser pool)'],
    ['planAndWrite', 'filters + plan + write (in transaction)'],
    ['write', 'storage writes (in transaction)'],
  ] as const) {
    if (!timeMethod(ingest, method, stage, inst)) uninstrumented.push(stage)
  }
  if (!timeMethod(ingest.repo, 'findInbound', 'dedupe lookups', inst)) uninstrumented.push('dedupe lookups')
  if (!instrumentedSync) {
    instrumentedSync = inst
    const proto = ImapMailboxSync.prototype as any
    const sharedInst = (): Instrumentation => instrumentedSync!
    for (const [method, stage] of [
      ['fetchSources', 'IMAP fetch of bodies'],
      ['loadCursor', 'cursor load'],
    ] as const) {
      const original = proto[method]
      if (typeof original !== 'function') {
        uninstrumented.push(stage)
        continue
      }
      proto[method] = async function (this: unknown, ...args: unknown[]) {
        const t = performance.now()
        try {
          return await original.apply(this, args)
        } finally {
          sharedInst().add(stage, performance.now() - t)
        }
      }
    }
    // Main-thread time handing messages to the parser workers (the profile puts it high).
    const workerProto = Worker.prototype as any
    const postMessage = workerProto.postMessage
    workerProto.postMessage = function (this: unknown, ...args: unknown[]) {
      const t = performance.now()
      try {
        return postMessage.apply(this, args)
      } finally {
        sharedInst().add('Worker.postMessage (main thread)', performance.now() - t)
      }
    }
  } else instrumentedSync = inst

  let workers: RunningWorkers | undefined
  let workersStartedAt = 0
  return {
    dialect: opts.dialect,
    runtime,
    services,
    inst,
    uninstrumented,
    async addImapMailbox(world, spec) {
      const form = {
        name: `Bench ${spec.email}`,
        email_address: spec.email,
        protocol: 'imap',
        host: world.imap.host,
        port: String(spec.port ?? world.imap.tlsPort),
        security: spec.security ?? 'tls',
        folder: 'INBOX',
        auth_type: 'oauth2',
        provider: 'custom',
        authorization_url: world.oauth.authorizationUrl,
        token_url: world.oauth.tokenUrl,
        scope: world.oauth.scope,
        client_id: world.oauth.clientId,
        client_secret: world.oauth.clientSecret,
        ack_action: 'leave',
        poll_interval_seconds: '60',
      }
      const { values, errors } = await services.emailServers.validate('incoming', form, false)
      if (!values) throw new Error(`the mailbox form was refused: ${JSON.stringify(errors)}`)
      const server = await services.emailServers.create(values)
      await services.credentials.storeAuthorization(
        server.credential_id!,
        {
          accessToken: spec.tokens.access_token,
          tokenType: 'bearer',
          refreshToken: spec.tokens.refresh_token,
          expiresAt: new Date(Date.now() + spec.tokens.expires_in * 1000),
        },
        { email: spec.email, subject: spec.email },
      )
      await services.emailServers.recordStatus(server.id, { ok: true, message: 'Connected (benchmark)' })
      return services.emailServers.get(server.id)
    },
    async startWorkers() {
      workersStartedAt = Date.now()
      workers = await startWorkers(services, {})
    },
    async stopWorkers() {
      await workers?.stop()
      workers = undefined
    },
    async waitSynced(serverIds, timeoutMs) {
      await waitFor(
        `a first sync of ${serverIds.length} mailbox(es)`,
        async () => {
          const rows = await services.storage.db
            .selectFrom('email_servers')
            .select(['id', 'last_success_at'])
            .where('id', 'in', serverIds)
            .execute()
          return rows.length === serverIds.length && rows.every((r) => r.last_success_at !== null && r.last_success_at >= workersStartedAt)
        },
        timeoutMs,
        50,
      )
    },
    logTail: () => logLines.join('').slice(-4_000),
    async stop() {
      await workers?.stop().catch(() => {})
      await runtime.stop()
      await services.ingest.close().catch(() => {})
      await db.drop().catch(() => {})
      fs.rmSync(dataDir, { recursive: true, force: true })
    },
  }
}
