import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type { Db } from '../../src/storage/database.ts'
import type { TestApp } from '../support/app.ts'

/** Polls `check` until it returns a truthy value (no timing assertion: only a generous deadline). */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | null | false>, timeoutMs = 20_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** A small customer mail with a unique Message-ID and subject. */
export function customerMail(opts: { subject?: string; from?: string; to?: string; body?: string } = {}): { raw: string; subject: string; messageId: string } {
  const id = randomBytes(6).toString('hex')
  const subject = opts.subject ?? `Printer on fire ${id}`
  const messageId = `${id}@customer.example`
  const raw = [
    `From: ${opts.from ?? `Customer ${id} <customer-${id}@customer.example>`}`,
    `To: ${opts.to ?? 'support@example.test'}`,
    `Subject: ${subject}`,
    `Message-ID: <${messageId}>`,
    `Date: ${new Date().toUTCString()}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    opts.body ?? `Hello, please help (${id}).`,
    '',
  ].join('\r\n')
  return { raw, subject, messageId }
}

/** Email Audit rows of one server, by subject. */
export async function auditRows(db: Db, serverId: number) {
  return db
    .selectFrom('inbound_mail')
    .select(['id', 'subject', 'outcome', 'source_key', 'message_id_header', 'request_id', 'message_id'])
    .where('server_id', '=', serverId)
    .execute()
}

export async function requestCount(db: Db, subject: string): Promise<number> {
  const r = await db.selectFrom('requests').select((eb) => eb.fn.countAll<number>().as('n')).where('subject', '=', subject).executeTakeFirstOrThrow()
  return Number(r.n)
}

export async function serverIdOf(app: TestApp, mailbox: string): Promise<number> {
  const s = await app.services.storage.db.selectFrom('email_servers').select('id').where('email_address', '=', mailbox).where('direction', '=', 'incoming').executeTakeFirstOrThrow()
  return s.id
}

export async function serverStatus(app: TestApp, id: number) {
  return app.services.storage.db.selectFrom('email_servers').select(['status', 'status_code', 'status_message', 'last_success_at']).where('id', '=', id).executeTakeFirstOrThrow()
}

/** Files in a Maildir folder (cur + new), i.e. the messages the server still has. */
export function maildirCount(root: string): number {
  let n = 0
  for (const sub of ['cur', 'new']) {
    try {
      n += fs.readdirSync(path.join(root, sub)).length
    } catch {}
  }
  return n
}

/** Waits until the server is synced by the worker and idle (its status says so). */
export async function waitSynced(app: TestApp, id: number): Promise<void> {
  await waitFor(`server ${id} synced`, async () => {
    const s = await serverStatus(app, id)
    return s.status === 'connected' && /^Synced: /.test(s.status_message ?? '')
  })
}
