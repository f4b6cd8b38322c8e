import type { Config } from '../config/index.ts'
import type { Storage } from '../storage/database.ts'
import type { EmailServer } from '../storage/schema.ts'
import type { Logger } from '../shared/logger.ts'
import type { Metrics } from '../shared/metrics.ts'
import type { CredentialStore } from '../oauth/credential-store.ts'
import type { BackgroundTask, WorkerOptions } from '../workers.ts'
import type { EmailServerService } from './email-servers.ts'
import { LeaseManager } from './leases.ts'
import { WorkerRegistry, fairShare, newWorkerId } from './worker-registry.ts'
import { ImapMailboxSync } from './sync/imap-sync.ts'
import { Pop3MailboxSync } from './sync/pop3-sync.ts'
import type { IngestBatcher, MailboxSession, SessionDeps } from './sync/session.ts'

export interface SupervisorServices {
  config: Config
  storage: Storage
  logger: Logger
  metrics: Metrics
  emailServers: EmailServerService
  credentials: CredentialStore
  ingest: IngestBatcher
}

interface Held {
  session: MailboxSession
  epoch: number
  fingerprint: string
}

/** The settings whose change means reconnecting (status columns change on every sync: not these). */
const CONFIG_COLUMNS = [
  'protocol', 'host', 'port', 'security', 'folder', 'auth_type', 'credential_id', 'username', 'password_enc',
  'email_address', 'ack_action', 'ack_folder', 'poll_interval_seconds',
] as const

function fingerprint(s: Pick<EmailServer, (typeof CONFIG_COLUMNS)[number]>): string {
  return JSON.stringify(CONFIG_COLUMNS.map((c) => s[c]))
}

/**
 * The mailbox supervisor of one worker process (DESIGN.md, Architecture): registers the worker,
 * claims its fair share of mailbox leases, runs one session per held mailbox (IMAP IDLE or POP3
 * polling), and every heartbeat renews the leases, stops sessions whose lease was lost or whose
 * server was disabled or deleted, restarts sessions whose settings changed, wakes parked sessions
 * whose credential was reauthorized, creates lease rows for new servers and claims or hands back
 * mailboxes as workers come and go. `stop()` (SIGTERM) stops taking work, lets each session finish
 * the batch in hand and log out, and releases the leases so that other workers take over at once.
 */
export class MailboxSupervisor implements BackgroundTask {
  readonly name = 'mailbox-supervisor'
  readonly workerId: string
  readonly leases: LeaseManager
  readonly registry: WorkerRegistry
  private readonly sessions = new Map<number, Held>()
  /** Sessions being handed back (rebalance, disabled): their lease is released once they stopped. */
  private readonly releasing = new Set<number>()
  private readonly handingBack = new Set<Promise<void>>()
  private readonly log: Logger
  private readonly concurrency: number
  private readonly heartbeatMs: number
  private timer: NodeJS.Timeout | undefined
  private ticking: Promise<void> | undefined
  private stopping = false
  private ticks = 0
  private readonly maxIdleMs: number | undefined

  constructor(
    private readonly services: SupervisorServices,
    opts: Partial<WorkerOptions> & { maxIdleMs?: number } = {},
  ) {
    const { config, storage, metrics } = services
    this.workerId = opts.id ?? newWorkerId()
    this.concurrency = opts.concurrency ?? config.workerConcurrency
    this.heartbeatMs = config.heartbeatSeconds * 1000
    this.log = services.logger.child({ component: 'mailbox-supervisor', workerId: this.workerId })
    this.leases = new LeaseManager(storage.db, storage.caps, { leaseMs: config.leaseSeconds * 1000, metrics, logger: this.log })
    // A worker is live while its heartbeat is younger than a lease: past that, its leases are claimable anyway.
    this.registry = new WorkerRegistry(storage.db, { staleMs: config.leaseSeconds * 1000 })
    this.maxIdleMs = opts.maxIdleMs
  }

  async start(): Promise<void> {
    await this.registry.register({ id: this.workerId, concurrency: this.concurrency })
    this.log.info({ concurrency: this.concurrency, leaseSeconds: this.services.config.leaseSeconds, heartbeatSeconds: this.services.config.heartbeatSeconds }, 'mailbox supervisor started')
    await this.runTick()
    this.schedule()
    this.services.emailServers.changes.on('change', this.nudge)
  }

  /**
   * A server was added, connected, edited or switched on or off in this process: run a heartbeat now
   * rather than up to `heartbeatSeconds` later (other processes still see it at their next heartbeat).
   */
  private readonly nudge = (): void => {
    if (this.stopping || this.nudged) return
    this.nudged = true
    setTimeout(() => {
      this.nudged = false
      if (this.stopping) return
      clearTimeout(this.timer)
      Promise.resolve(this.ticking)
        .then(() => (this.stopping ? undefined : this.runTick()))
        .finally(() => this.schedule())
    }, 50)
  }
  private nudged = false

  async stop(): Promise<void> {
    if (this.stopping) return
    this.stopping = true
    this.services.emailServers.changes.off('change', this.nudge)
    clearTimeout(this.timer)
    await this.ticking
    await this.registry.markStopping(this.workerId).catch(() => {})
    const held = [...this.sessions.values()]
    this.sessions.clear()
    await Promise.all([...held.map((h) => h.session.stop({ graceful: true })), ...this.handingBack])
    await this.leases.release(this.workerId).catch((err) => this.log.error({ err }, 'releasing leases failed'))
    await this.registry.unregister(this.workerId).catch(() => {})
    this.services.metrics.mailboxesHeld.remove({ worker: this.workerId })
    this.log.info({ released: held.length }, 'mailbox supervisor stopped; leases released')
  }

  /** Mailboxes this worker syncs now, for tests and diagnostics. */
  held(): Array<{ serverId: number; epoch: number; state: string }> {
    return [...this.sessions.entries()].map(([serverId, h]) => ({ serverId, epoch: h.epoch, state: h.session.state }))
  }

  private schedule(): void {
    if (this.stopping) return
    // One pending heartbeat at a time, whoever (timer or nudge) scheduled it last.
    clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.runTick().finally(() => this.schedule())
    }, this.heartbeatMs)
  }

  private runTick(): Promise<void> {
    const p = this.tick()
      .catch((err) => this.log.error({ err }, 'supervisor heartbeat failed'))
      .finally(() => {
        this.ticking = undefined
      })
    this.ticking = p
    return p
  }

  /** One heartbeat. Renewal comes first: everything else may wait, the leases may not. */
  private async tick(): Promise<void> {
    if (this.stopping) return
    this.ticks++
    if (!(await this.registry.heartbeat(this.workerId))) {
      await this.registry.register({ id: this.workerId, concurrency: this.concurrency })
    }
    const believed = new Map([...this.sessions].map(([id, h]) => [id, h.epoch]))
    const { renewed, lost } = await this.leases.renew(this.workerId, believed)
    for (const serverId of lost) {
      this.log.warn({ serverId }, 'mailbox lease lost (taken over after this worker missed its heartbeats): stopping its session')
      this.drop(serverId, { graceful: false })
    }
    for (const r of renewed) {
      // A lease in our name without a session (left by a crashed session): hand it back.
      if (!this.sessions.has(r.serverId) && !this.releasing.has(r.serverId)) await this.leases.release(this.workerId, r.serverId)
    }
    // Sessions that ended by themselves (lease lost during a commit, server deleted).
    for (const [serverId, h] of this.sessions) {
      if (h.session.state === 'stopped') {
        this.sessions.delete(serverId)
        if (h.session.endedBy !== 'lease_lost') await this.leases.release(this.workerId, serverId)
      }
    }
    await this.reconcile()
    if (this.stopping) return
    await this.leases.ensureRows()
    await this.balance()
    if (this.ticks % 30 === 1) await this.registry.cleanup(Math.max(10 * this.leases.leaseMs, 5 * 60_000))
    this.updateMetrics()
  }

  /** Disabled or deleted servers, changed settings, reauthorized credentials. */
  private async reconcile(): Promise<void> {
    const ids = [...this.sessions.keys()]
    if (!ids.length) return
    const db = this.services.storage.db
    const rows = await db
      .selectFrom('email_servers')
      .select(['id', 'enabled', 'direction', ...CONFIG_COLUMNS])
      .where('id', 'in', ids)
      .execute()
    const byId = new Map(rows.map((r) => [r.id, r]))
    for (const [serverId, h] of this.sessions) {
      const row = byId.get(serverId)
      if (!row || !row.enabled || row.direction !== 'incoming') {
        this.log.info({ serverId, reason: row ? 'disabled' : 'deleted' }, 'stopping the session of a server that is no longer enabled')
        this.handBack(serverId)
      } else if (fingerprint(row) !== h.fingerprint) {
        this.log.info({ serverId }, 'server settings changed: reconnecting')
        this.sessions.delete(serverId)
        await h.session.stop({ graceful: true })
        this.startSession(serverId, h.epoch, row)
      }
    }
    const parked = [...this.sessions.values()].filter((h) => h.session.parkedOn)
    if (!parked.length) return
    const creds = await db
      .selectFrom('credentials')
      .select(['id', 'version', 'status'])
      .where('id', 'in', parked.map((h) => h.session.parkedOn!.credentialId))
      .execute()
    for (const h of parked) {
      const on = h.session.parkedOn!
      const c = creds.find((x) => x.id === on.credentialId)
      // Only a changed AND usable credential wakes the session: no retry storm on a dead grant.
      if (c && c.version !== on.version && c.status !== 'needs_reauthorization' && c.status !== 'pending_authorization') {
        this.log.info({ serverId: h.session.serverId }, 'credential reauthorized: reconnecting')
        h.session.wake()
      }
    }
  }

  /** Fair share: claim up to it, or hand back what exceeds it now that more workers are live. */
  private async balance(): Promise<void> {
    const live = await this.registry.live()
    const concurrencies = live.map((w) => w.concurrency)
    if (!live.some((w) => w.id === this.workerId)) concurrencies.push(this.concurrency)
    const total = await this.leases.enabledCount()
    const share = fairShare(total, concurrencies, this.concurrency)
    const holding = this.sessions.size
    if (holding > share) {
      const extra = [...this.sessions.keys()].slice(share)
      this.log.info({ holding, share, handingBack: extra.length }, 'rebalancing: handing mailboxes back to other workers')
      for (const serverId of extra) this.handBack(serverId)
      return
    }
    if (holding + this.releasing.size >= share) return
    const claimed = await this.leases.claim(this.workerId, share - holding - this.releasing.size)
    if (!claimed.length) return
    const servers = await this.services.storage.db
      .selectFrom('email_servers')
      .selectAll()
      .where('id', 'in', claimed.map((c) => c.serverId))
      .execute()
    for (const c of claimed) {
      const s = servers.find((x) => x.id === c.serverId)
      if (!s) {
        await this.leases.release(this.workerId, c.serverId)
        continue
      }
      this.startSession(c.serverId, c.epoch, s)
    }
    this.log.info({ claimed: claimed.map((c) => c.serverId), holding: this.sessions.size, share }, 'mailbox leases claimed')
  }

  private startSession(serverId: number, epoch: number, server: Pick<EmailServer, 'protocol' | (typeof CONFIG_COLUMNS)[number]>): void {
    const deps: SessionDeps = {
      db: this.services.storage.db,
      emailServers: this.services.emailServers,
      credentials: this.services.credentials,
      ingest: this.services.ingest,
      leases: this.leases,
      logger: this.log,
      metrics: this.services.metrics,
      workerId: this.workerId,
      maxIdleMs: this.maxIdleMs,
    }
    const session = server.protocol === 'pop3' ? new Pop3MailboxSync(serverId, epoch, deps) : new ImapMailboxSync(serverId, epoch, deps)
    this.sessions.set(serverId, { session, epoch, fingerprint: fingerprint(server) })
    session.start()
  }

  /** Lease lost: the connection is dropped at once (nothing it does could commit). */
  private drop(serverId: number, opts: { graceful: boolean }): void {
    const h = this.sessions.get(serverId)
    if (!h) return
    this.sessions.delete(serverId)
    this.services.metrics.syncLag.remove({ server: String(serverId) })
    void h.session.stop({ graceful: opts.graceful, timeoutMs: 1_000 })
  }

  /** Stop gracefully (finish the batch in hand, log out), then release the lease for another worker. */
  private handBack(serverId: number): void {
    const h = this.sessions.get(serverId)
    if (!h) return
    this.sessions.delete(serverId)
    this.releasing.add(serverId)
    this.services.metrics.syncLag.remove({ server: String(serverId) })
    const p: Promise<void> = h.session
      .stop({ graceful: true })
      .then(() => this.leases.release(this.workerId, serverId))
      .catch((err) => this.log.error({ err, serverId }, 'handing a mailbox back failed'))
      .finally(() => {
        this.releasing.delete(serverId)
        this.handingBack.delete(p)
      })
    this.handingBack.add(p)
  }

  private updateMetrics(): void {
    const { metrics } = this.services
    metrics.mailboxesHeld.set({ worker: this.workerId }, this.sessions.size)
    const now = Date.now()
    for (const [serverId, h] of this.sessions) {
      // An IMAP session in IDLE is in sync by construction (push); otherwise, time since the last good sync.
      const s = h.session
      const lag = s.protocol === 'imap' && s.state === 'idle' ? 0 : s.lastSuccessAt ? (now - s.lastSuccessAt) / 1000 : 0
      metrics.syncLag.set({ server: String(serverId) }, lag)
    }
  }
}
