/**
 * Measures push latency: a message delivered into the Dovecot mailbox (Maildir rename, as an MDA
 * does) until its request is committed in deskmail's database, with the real supervisor in IDLE.
 * Dovecot itself waits 0.5 s before notifying IDLE clients (HARNESS.md).
 *
 *   NODE_EXTRA_CA_CERTS=$(npx tsx test/harness/pki.ts) npx tsx test/sync/measure-push-latency.ts [samples] [sqlite|postgres]
 */
import { startTestApp } from '../support/app.ts'
import { connectIncoming, incomingForm, registerDeskmail, startMailWorld } from '../support/mail-world.ts'
import type { Dialect } from '../support/dialects.ts'
import { customerMail, serverIdOf, waitSynced } from './support.ts'

const samples = Number(process.argv[2] ?? 20)
const dialect = (process.argv[3] ?? 'sqlite') as Dialect
const world = await startMailWorld()
const app = await startTestApp({ dialect, workers: true, env: { DESKMAIL_HEARTBEAT_SECONDS: '1', DESKMAIL_LEASE_SECONDS: '5' } })
try {
  registerDeskmail(world, app.url)
  const mailbox = 'latency@example.test'
  await connectIncoming(world, await app.admin(), incomingForm(world, mailbox))
  const id = await serverIdOf(app, mailbox)
  await waitSynced(app, id)
  const db = app.services.storage.db
  const times: number[] = []
  for (let i = 0; i < samples; i++) {
    // Let the connection settle into IDLE between samples, as a real mailbox would be.
    await new Promise((r) => setTimeout(r, 300 + Math.random() * 400))
    const mail = customerMail()
    const t0 = performance.now()
    await world.dovecot.deliver(mailbox, mail.raw)
    for (;;) {
      const row = await db.selectFrom('requests').select('id').where('subject', '=', mail.subject).executeTakeFirst()
      if (row) break
      if (performance.now() - t0 > 10_000) throw new Error('not ingested within 10 s')
      await new Promise((r) => setTimeout(r, 2))
    }
    times.push(performance.now() - t0)
  }
  const sorted = [...times].sort((a, b) => a - b)
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
  console.log(`push latency on ${dialect}, ${samples} samples (ms): ${times.map((t) => t.toFixed(0)).join(' ')}`)
  console.log(`p50 ${q(0.5).toFixed(0)} ms, p90 ${q(0.9).toFixed(0)} ms, max ${sorted[sorted.length - 1]!.toFixed(0)} ms`)
} finally {
  await app.stop()
  await world.stop()
}
