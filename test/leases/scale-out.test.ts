/**
 * Issue #6: several real `deskmail worker` processes on one PostgreSQL database share the
 * mailboxes through leases. A killed worker's mailboxes move to the others after the lease time,
 * a worker paused past its lease writes nothing for the mailboxes it lost, and every message is
 * ingested exactly once.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../../src/config/index.ts'
import { createServices } from '../../src/services.ts'
import type { Services } from '../../src/services.ts'
import { migrate, openStorage } from '../../src/storage/database.ts'
import type { Storage } from '../../src/storage/database.ts'
import { createLogger } from '../../src/shared/logger.ts'
import { generateKeyringValue, parseKeyring } from '../../src/shared/secret-box.ts'
import { createTestDatabase } from '../harness/postgres.ts'
import type { TestDatabase } from '../harness/postgres.ts'
import { CLIENT, incomingForm, registerDeskmail, startMailWorld } from '../support/mail-world.ts'
import type { MailWorld } from '../support/mail-world.ts'
import { customerMail, waitFor } from '../sync/support.ts'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const MAILBOXES = 60
const LEASE_SECONDS = 5

interface Worker {
  child: ChildProcess
  pid: number
  lines: Array<Record<string, any>>
  exited: Promise<void>
}

describe('several worker processes on PostgreSQL', () => {
  let world: MailWorld
  let database: TestDatabase
  let storage: Storage
  let services: Services
  let dataDir: string
  const secretKey = generateKeyringValue()
  const workers: Worker[] = []
  const mailboxes = Array.from({ length: MAILBOXES }, (_, i) => `scale${i}@example.test`)
  let delivered = 0

  before(async () => {
    world = await startMailWorld()
    registerDeskmail(world, 'http://127.0.0.1:9')
    database = await createTestDatabase()
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'deskmail-scale-'))
    storage = await openStorage(database.url)
    await migrate(storage)
    const config = loadConfig({ DATABASE_URL: database.url, DESKMAIL_DATA_DIR: dataDir, DESKMAIL_ALLOWED_PRIVATE_HOSTS: '127.0.0.1', DESKMAIL_SECRET_KEY: secretKey })
    services = createServices({ config, storage, logger: createLogger({ level: 'silent' }), keyring: parseKeyring(secretKey) })
    // The mailboxes are authorized directly with tokens minted at the stand-in (the portal flow is tested elsewhere).
    for (const mailbox of mailboxes) {
      const { values, errors } = await services.emailServers.validate('incoming', incomingForm(world, mailbox), false)
      assert.ok(values, JSON.stringify(errors))
      const server = await services.emailServers.create(values)
      const t = await world.oauth.issueTokens({ clientId: CLIENT.id, email: mailbox })
      await services.credentials.storeAuthorization(
        server.credential_id!,
        { accessToken: t.access_token, refreshToken: t.refresh_token, tokenType: 'bearer', expiresAt: new Date(Date.now() + t.expires_in * 1000) },
        { email: mailbox, subject: mailbox },
      )
    }
  })

  after(async () => {
    for (const w of workers) {
      try {
        process.kill(w.pid, 'SIGKILL')
      } catch {}
    }
    await Promise.all(workers.map((w) => w.exited))
    await services?.ingest.close().catch(() => {})
    await storage?.close()
    await database?.drop()
    await world?.stop()
    fs.rmSync(dataDir, { recursive: true, force: true })
  })

  const db = () => storage.db

  function startWorker(): Worker {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'worker'], {
      cwd: root,
      env: {
        ...process.env,
        DATABASE_URL: database.url,
        DESKMAIL_SECRET_KEY: secretKey,
        DESKMAIL_DATA_DIR: dataDir,
        DESKMAIL_ALLOWED_PRIVATE_HOSTS: '127.0.0.1',
        DESKMAIL_LEASE_SECONDS: String(LEASE_SECONDS),
        DESKMAIL_HEARTBEAT_SECONDS: '1',
        LOG_LEVEL: 'debug',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const lines: Worker['lines'] = []
    let buffered = ''
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk
      const parts = buffered.split('\n')
      buffered = parts.pop()!
      for (const p of parts) {
        try {
          lines.push(JSON.parse(p))
        } catch {}
      }
    })
    const errors: string[] = []
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => errors.push(chunk))
    child.once('exit', (code, signal) => {
      // A worker that dies by itself (not by our signals) tells why.
      if (code !== 0 && signal === null) process.stderr.write(`worker ${child.pid} exited with ${code}: ${errors.join('')}\n`)
    })
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    const w = { child, pid: child.pid!, lines, exited }
    workers.push(w)
    return w
  }

  const workerId = async (w: Worker) =>
    // Generous: three processes compiling TypeScript at once on a busy 2-core machine.
    (await waitFor(`worker ${w.pid} registered`, async () => db().selectFrom('workers').select('id').where('pid', '=', w.pid).executeTakeFirst(), 90_000, 100)).id

  /** Live leases per owner. */
  async function owners(): Promise<Map<string, number[]>> {
    const rows = await db().selectFrom('mailbox_leases').select(['server_id', 'owner']).where('owner', 'is not', null).where('expires_at', '>', Date.now()).execute()
    const out = new Map<string, number[]>()
    for (const r of rows) out.set(r.owner!, [...(out.get(r.owner!) ?? []), r.server_id])
    return out
  }

  async function balancedAmong(ids: string[]): Promise<boolean> {
    const o = await owners()
    const share = Math.ceil(MAILBOXES / ids.length)
    const held = ids.reduce((n, id) => n + (o.get(id)?.length ?? 0), 0)
    return held === MAILBOXES && [...o.keys()].every((k) => ids.includes(k)) && ids.every((id) => (o.get(id)?.length ?? 0) <= share)
  }

  /** One new message in every mailbox; resolves once they are all committed. */
  async function deliverRound(): Promise<void> {
    for (const mailbox of mailboxes) await world.dovecot.deliver(mailbox, customerMail({ to: mailbox }).raw)
    delivered += mailboxes.length
    await waitFor(`${delivered} messages ingested`, async () => (await ingestedCount()) >= delivered, 60_000, 100)
  }

  async function ingestedCount(): Promise<number> {
    const r = await db().selectFrom('inbound_mail').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
    return Number(r.n)
  }

  async function assertExactlyOnce(): Promise<void> {
    const r = await db()
      .selectFrom('inbound_mail')
      .select((eb) => [eb.fn.countAll<number>().as('rows'), eb.fn.count<number>('message_id_header').distinct().as('distinct')])
      .executeTakeFirstOrThrow()
    assert.equal(Number(r.rows), delivered, 'every delivered message has one audit row')
    assert.equal(Number(r.distinct), delivered, 'no message was ingested twice')
    const requests = await db().selectFrom('requests').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
    assert.equal(Number(requests.n), delivered)
  }

  it('when three workers start, then they share the mailboxes evenly and ingest each message once', async () => {
    const started = [startWorker(), startWorker(), startWorker()]
    const ids = await Promise.all(started.map(workerId))
    await waitFor('mailboxes shared by the three workers', () => balancedAmong(ids), 30_000, 100)
    await deliverRound()
    await assertExactlyOnce()
  })

  it('when a worker is killed, then its mailboxes move to the others within the lease time and nothing is lost or doubled', async () => {
    const [victim, ...rest] = workers
    const victimId = await workerId(victim!)
    const lostMailboxes = (await owners()).get(victimId) ?? []
    assert.ok(lostMailboxes.length > 0)
    process.kill(victim!.pid, 'SIGKILL')
    await victim!.exited
    // Mail arrives while nobody holds the victim's mailboxes: it waits for the takeover.
    await deliverRound()
    await assertExactlyOnce()
    const restIds = await Promise.all(rest.map(workerId))
    await waitFor('mailboxes shared by the two survivors', () => balancedAmong(restIds), 20_000, 100)
  })

  it('when a worker is paused past its lease, then it commits nothing for the mailboxes it lost', async () => {
    const [, paused, survivor] = workers
    const pausedId = await workerId(paused!)
    const survivorId = await workerId(survivor!)
    const taken = await db().selectFrom('mailbox_leases').select(['server_id', 'epoch']).where('owner', '=', pausedId).execute()
    assert.ok(taken.length > 0)
    process.kill(paused!.pid, 'SIGSTOP')
    // Delivered while it is frozen: its IDLE sockets receive the EXISTS, which it reads on waking.
    await deliverRound()
    const after = await db().selectFrom('mailbox_leases').select(['server_id', 'owner', 'epoch']).where('server_id', 'in', taken.map((t) => t.server_id)).execute()
    for (const t of taken) {
      const now = after.find((a) => a.server_id === t.server_id)!
      assert.equal(now.owner, survivorId)
      assert.ok(now.epoch > t.epoch)
    }
    const resumedAt = Date.now()
    process.kill(paused!.pid, 'SIGCONT')
    await waitFor('the paused worker learned it lost its leases', async () => paused!.lines.some((l) => /lease lost/.test(l.msg) && Date.parse(l.time) >= resumedAt - 1_000), 20_000, 100)
    await waitFor('mailboxes shared again by both workers', () => balancedAmong([pausedId, survivorId]), 20_000, 100)
    await deliverRound()
    await assertExactlyOnce()
    // Nothing committed under the old epochs after waking up.
    const stale = paused!.lines.filter(
      (l) => l.msg === 'batch committed' && Date.parse(l.time) >= resumedAt - 1_000 && taken.some((t) => t.server_id === l.serverId && t.epoch === l.epoch),
    )
    assert.deepEqual(stale, [])
  })

  it('when a new worker starts, then the mailboxes are rebalanced onto it without a message lost or doubled', async () => {
    const alive = workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null)
    const aliveIds = await Promise.all(alive.map(workerId))
    const newcomer = startWorker()
    const newcomerId = await workerId(newcomer)
    await waitFor('mailboxes rebalanced onto the new worker', () => balancedAmong([...aliveIds, newcomerId]), 30_000, 100)
    assert.ok(((await owners()).get(newcomerId)?.length ?? 0) > 0, 'the new worker took its share')
    await deliverRound()
    await assertExactlyOnce()
  })

  it('when the workers get SIGTERM, then they finish, release their leases and unregister', async () => {
    const alive = workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null)
    const aliveIds = await Promise.all(alive.map(workerId))
    for (const w of alive) process.kill(w.pid, 'SIGTERM')
    await Promise.all(alive.map((w) => w.exited))
    for (const w of alive) assert.equal(w.child.exitCode, 0)
    const held = await db().selectFrom('mailbox_leases').select('server_id').where('owner', 'is not', null).execute()
    assert.deepEqual(held, [])
    // Only the killed worker's row is left, until the cleanup of silent workers removes it.
    const rows = await db().selectFrom('workers').select('id').execute()
    assert.ok(rows.every((r) => !aliveIds.includes(r.id)))
    assert.equal(rows.length, 1)
    await assertExactlyOnce()
  })
})
