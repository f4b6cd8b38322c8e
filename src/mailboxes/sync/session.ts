import type { Transaction } from 'kysely'
import type { Db } from '../../storage/database.ts'
import type { Database, EmailServer } from '../../storage/schema.ts'
import type { Logger } from '../../shared/logger.ts'
import type { Metrics } from '../../shared/metrics.ts'
import { AppError, isAppError } from '../../shared/errors.ts'
import { backoffDelay } from '../../shared/backoff.ts'
import { mailConnectionError } from '../../mail/connection-errors.ts'
import type { EmailServerService } from '../email-servers.ts'
import type { CredentialStore } from '../../oauth/credential-store.ts'
import type { LeaseManager } from '../leases.ts'

/** One message handed to the ingest pipeline (the contract of `src/ingest/pipeline.ts`). */
export interface RawMessage {
  /** `imap:<uidvalidity>:<uid>` or `pop3:<uidl>`: a replay of the same key is a duplicate. */
  sourceKey: string
  raw: Buffer
}

export interface BatchHooks {
  /** Inside the batch's transaction, before commit: cursor advance and lease guard. Throwing rolls back. */
  beforeCommit?(trx: Transaction<Database>): Promise<void>
}

/** What the sessions need of `IngestPipeline` (structural, so the pipeline can evolve behind it). */
export interface IngestBatcher {
  ingestBatch(server: EmailServer, messages: RawMessage[], hooks?: BatchHooks): Promise<Array<{ outcome: string }>>
  /** Starts what the first batch needs (the parser workers) while the session connects. */
  warmUp?(): void
}

export interface SessionDeps {
  db: Db
  emailServers: EmailServerService
  credentials: CredentialStore
  ingest: IngestBatcher
  leases: LeaseManager
  logger: Logger
  metrics: Metrics
  workerId: string
  /** IMAP: IDLE restart interval (RFC 2177 asks for less than 29 minutes). */
  maxIdleMs?: number
}

export type SessionState = 'starting' | 'connecting' | 'syncing' | 'idle' | 'waiting' | 'backoff' | 'parked' | 'stopped'

/** Messages per ingest batch, and a byte ceiling so that a few huge mails do not pile up in memory. */
export const BATCH_MESSAGES = 200
export const BATCH_BYTES = 32 * 1024 * 1024

/** A promise whose resolution is decided from outside. */
export function deferred<T = void>() {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  promise.catch(() => {})
  return { promise, resolve, reject }
}

/** Resolves after `ms`, or at once when `signal` fires. */
export function sleep(ms: number, interrupt: Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms)
    interrupt.then(
      () => {
        clearTimeout(t)
        resolve()
      },
      () => {
        clearTimeout(t)
        resolve()
      },
    )
  })
}

/** Rejects with `code` when `promise` has not settled within `ms` (a hung server must not hang a shutdown). */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new AppError('timeout', `${what} did not finish within ${ms} ms`, { transient: true })), ms)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** Whether an error means the credential itself is dead: no retry until the admin reconnects. */
export function needsReauthorization(err: AppError): boolean {
  return err.code === 'credential_needs_reauthorization' || (err.code.startsWith('oauth_') && !err.transient)
}

/** Our own errors pass through; whatever a protocol client threw becomes plain words (connection-errors.ts). */
export function toAppError(err: unknown, protocol: 'imap' | 'pop3', where: { host: string; port: number }): AppError {
  // The POP3 client's own codes still need the provider-specific reading of the server's text.
  if (isAppError(err) && !err.code.startsWith('pop3_')) return err
  const e = err as { severity?: unknown; code?: unknown; message?: string }
  // PostgreSQL errors carry a severity, SQLite ones an SQLITE_ code: not the mail server's fault.
  if (e && (typeof e.severity === 'string' || (typeof e.code === 'string' && e.code.startsWith('SQLITE_')))) {
    return new AppError('database_error', `The database failed during the sync (${String(e.message ?? err).slice(0, 200)}); deskmail retries by itself.`, {
      transient: true,
      cause: err,
    })
  }
  return mailConnectionError(err, protocol, where)
}

/**
 * The life of one mailbox held by this worker: connect with a fresh token, sync, wait for mail
 * (IMAP IDLE or POP3 polling), and on failure retry with backoff and jitter, or park when the
 * credential needs re-authorization (no retry storm: the supervisor wakes the session when the
 * credential changes). Subclasses implement one connection's life in `runConnection`.
 */
export abstract class MailboxSession {
  abstract readonly protocol: 'imap' | 'pop3'
  state: SessionState = 'starting'
  /** The last time the mailbox was known to be in sync. */
  lastSuccessAt: number | null = null
  /** Set when the credential is dead: the session waits for this credential's version to change. */
  parkedOn: { credentialId: number; version: number } | undefined
  /** Why the session ended by itself (`lease_lost`), if it did. */
  endedBy: string | undefined
  done: Promise<void> = Promise.resolve()

  protected stopping = false
  protected graceful = true
  protected readonly stopSignal = deferred()
  private wakeSignal = deferred()
  private failures = 0
  protected readonly log: Logger

  constructor(
    readonly serverId: number,
    readonly epoch: number,
    protected readonly deps: SessionDeps,
  ) {
    this.log = deps.logger.child({ serverId, epoch })
  }

  start(): void {
    this.done = this.run().catch((err) => {
      this.log.error({ err }, 'mailbox session crashed')
    })
  }

  /**
   * Stops the session. Graceful (shutdown, rebalance): the batch in hand is committed and
   * acknowledged, then the session logs out. Not graceful (lease lost): the connection is dropped
   * at once; nothing can commit anyway, the lease guard would refuse it.
   */
  async stop(opts: { graceful?: boolean; timeoutMs?: number } = {}): Promise<void> {
    this.graceful = opts.graceful ?? true
    this.stopping = true
    this.stopSignal.resolve()
    this.onStop()
    await withTimeout(this.done, opts.timeoutMs ?? 15_000, 'mailbox session stop').catch(() => {
      this.log.warn('mailbox session did not stop in time; dropping its connection')
      this.graceful = false
      this.onStop()
    })
  }

  /** Retries now: called by the supervisor when the parked credential was reauthorized. */
  wake(): void {
    const w = this.wakeSignal
    this.wakeSignal = deferred()
    w.resolve()
  }

  /** Hook for subclasses: drop the connection (not graceful) or end the wait (graceful). */
  protected abstract onStop(): void

  /**
   * One connection: connect, sync, wait for mail until the connection ends or the session stops.
   * Calls `healthy()` after every successful sync. Resolves when the connection closed (the
   * session reconnects), throws on failure.
   */
  protected abstract runConnection(server: EmailServer, healthy: (newMessages: number) => Promise<void>): Promise<void>

  private async run(): Promise<void> {
    while (!this.stopping) {
      let server: EmailServer
      try {
        server = await this.deps.emailServers.get(this.serverId)
      } catch (err) {
        if (isAppError(err, 'server_not_found')) break
        await this.backoff(err, undefined)
        continue
      }
      if (!server.enabled || server.direction !== 'incoming') break
      try {
        if (await this.parkIfUnauthorized(server)) continue
        this.state = 'connecting'
        this.deps.ingest.warmUp?.()
        await this.runConnection(server, async (n) => this.succeeded(server, n))
        if (this.stopping) break
        // The server closed the connection (IDLE timeout, restart, BYE): reconnect soon, with jitter
        // so that a restarted server is not hit by every mailbox at the same instant.
        this.failures++
        this.state = 'backoff'
        this.log.info('connection closed by the server; reconnecting')
        await sleep(backoffDelay(this.failures, { baseMs: 250, capMs: 60_000 }), Promise.race([this.stopSignal.promise, this.wakeSignal.promise]))
      } catch (err) {
        if (this.stopping) break
        const e = toAppError(err, this.protocol, server)
        if (e.code === 'lease_lost') {
          this.endedBy = 'lease_lost'
          this.log.warn('lease lost during a sync: the batch was rolled back; stopping this mailbox')
          break
        }
        if (needsReauthorization(e)) {
          await this.park(server, e)
          continue
        }
        await this.backoff(e, server)
      }
    }
    this.state = 'stopped'
  }

  private async succeeded(server: EmailServer, newMessages: number): Promise<void> {
    this.failures = 0
    this.lastSuccessAt = Date.now()
    this.deps.metrics.syncs.inc({ protocol: this.protocol, result: 'ok' })
    await this.deps.emailServers.recordStatus(server.id, { ok: true, message: `Synced: ${newMessages} new` })
  }

  /** A credential never authorized or dead: wait (without touching the provider) until it changes. */
  private async parkIfUnauthorized(server: EmailServer): Promise<boolean> {
    if (server.auth_type !== 'oauth2') return false
    const c = server.credential_id ? await this.deps.credentials.get(server.credential_id) : undefined
    if (c && c.status !== 'pending_authorization' && c.status !== 'needs_reauthorization' && c.refresh_token_enc) return false
    if (c?.status === 'needs_reauthorization') await this.deps.emailServers.refreshStatusFromCredential(server.id)
    await this.waitParked(c ? { credentialId: c.id, version: c.version } : undefined)
    return true
  }

  private async park(server: EmailServer, e: AppError): Promise<void> {
    this.deps.metrics.syncs.inc({ protocol: this.protocol, result: 'needs_reauthorization' })
    this.log.warn({ errorCode: e.code }, 'the credential needs re-authorization: this mailbox waits until the admin reconnects it')
    await this.deps.emailServers
      .recordStatus(server.id, { ok: false, code: 'credential_needs_reauthorization', message: e.message })
      .catch((err) => this.log.error({ err }, 'recording the status failed'))
    const c = server.credential_id ? await this.deps.credentials.get(server.credential_id) : undefined
    await this.waitParked(c ? { credentialId: c.id, version: c.version } : undefined)
  }

  private async waitParked(on: { credentialId: number; version: number } | undefined): Promise<void> {
    this.state = 'parked'
    this.parkedOn = on
    await Promise.race([this.stopSignal.promise, this.wakeSignal.promise])
    this.parkedOn = undefined
  }

  private async backoff(err: unknown, server: EmailServer | undefined): Promise<void> {
    const e = server ? toAppError(err, this.protocol, server) : isAppError(err) ? err : new AppError('sync_failed', String(err), { transient: true, cause: err })
    this.failures++
    this.state = 'backoff'
    this.deps.metrics.syncs.inc({ protocol: this.protocol, result: e.transient ? 'transient_error' : 'error' })
    // Transient: a quick first retry, capped at 5 minutes. Anything else (IMAP disabled in Gmail,
    // a refused password) needs someone to act: retry rarely, so the status recovers by itself
    // once they did, without hammering the server meanwhile.
    const delay = e.transient
      ? backoffDelay(this.failures, { baseMs: 1_000, capMs: 5 * 60_000 })
      : backoffDelay(this.failures, { baseMs: 30_000, capMs: 30 * 60_000 })
    this.log.warn({ errorCode: e.code, failures: this.failures, retryInMs: delay, message: e.message }, 'mailbox sync failed')
    if (server) {
      // The oauth_ prefix would read as "needs re-authorization" to recordStatus: a transient
      // provider failure is a degraded credential, retried by itself.
      const code = e.transient && e.code.startsWith('oauth_') ? 'credential_degraded' : e.code
      await this.deps.emailServers
        .recordStatus(server.id, { ok: false, code, message: e.message, transient: e.transient })
        .catch((error) => this.log.error({ err: error }, 'recording the status failed'))
    }
    await sleep(delay, Promise.race([this.stopSignal.promise, this.wakeSignal.promise]))
  }

  /**
   * The login for a (re)connect, and one retry with a refreshed token when the mail server refuses
   * the token although it had not expired by our clock (revoked, or the provider expired it early).
   * A dead refresh token surfaces here as `oauth_invalid_grant`, which parks the session.
   */
  protected async withFreshLogin<T>(server: EmailServer, connect: (login: Awaited<ReturnType<EmailServerService['login']>>) => Promise<T>): Promise<T> {
    const login = await this.deps.emailServers.login(server)
    try {
      return await connect(login)
    } catch (err) {
      const e = toAppError(err, this.protocol, server)
      if (e.code !== 'mail_auth_rejected' || server.auth_type !== 'oauth2' || !server.credential_id || this.stopping) throw e
      this.log.info('the mail server refused the access token: refreshing it once and retrying')
      await this.deps.credentials.refresh(server.credential_id)
      return connect(await this.deps.emailServers.login(server))
    }
  }

  /** The lease guard for a batch's transaction. */
  protected guard(trx: Transaction<Database>): Promise<void> {
    return this.deps.leases.guard(trx, this.serverId, this.deps.workerId, this.epoch)
  }
}
