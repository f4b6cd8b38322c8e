/**
 * `--profile`: the SQLite ingestion once more, under `--cpu-prof` (main thread and every parser
 * worker), summarized into where the CPU went. Profiling slows the run down, so these numbers
 * explain the figure; they are not the figure.
 */
import fs from 'node:fs'
import path from 'node:path'
import { generateCorpus, MAILBOX_ADDRESS } from '../corpus.ts'
import type { RunContext } from '../lib/context.ts'
import { formatSummaries, summarizeProfile } from '../lib/profile.ts'
import type { IngestProductResult } from '../tasks/ingest-product.ts'

export async function profileIngest(ctx: RunContext): Promise<void> {
  const count = ctx.quick ? 2_000 : 5_000
  const user = MAILBOX_ADDRESS
  const maildir = ctx.world.dovecot.maildir(user)
  const present = ['cur', 'new'].reduce((n, d) => n + (fs.existsSync(path.join(maildir, d)) ? fs.readdirSync(path.join(maildir, d)).length : 0), 0)
  if (present !== count) await ctx.world.dovecot.bulkLoad(user, generateCorpus(count))

  const dir = path.join(ctx.profileDir, `ingest-sqlite-${ctx.env.mode}`)
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  ctx.log(`profile: deskmail ingestion on SQLite under --cpu-prof (${dir})`)
  const r = await ctx.child<IngestProductResult>(
    'ingest-product',
    { world: ctx.world.info, dialect: 'sqlite', email: user, tokens: await ctx.world.issueTokens(user), expected: count, timeoutMs: 300_000 },
    { timeoutMs: 400_000, cpuProfDir: dir },
  ).result
  // The profiles are written when each thread exits, just after the result.
  await new Promise((resolve) => setTimeout(resolve, 1_000))
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))
  const summaries = files.map((f) => summarizeProfile(path.join(dir, f))).sort((a, b) => (a.thread === 'main' ? -1 : b.thread === 'main' ? 1 : a.thread.localeCompare(b.thread)))
  const text =
    `Ingestion of ${count} messages on SQLite under --cpu-prof: ${r.rate.toFixed(0)} msg/s (profiling slows it down), ` +
    `CPU ${r.cpu.percentOfOneCore.toFixed(0)}% of one core over ${(r.ms / 1000).toFixed(1)} s\n` +
    `stage wall-clock sums (ms): ${JSON.stringify(r.stages)}\n\n` +
    formatSummaries(summaries)
  fs.writeFileSync(path.join(ctx.profileDir, `ingest-sqlite-${ctx.env.mode}.txt`), text + '\n')
  fs.writeFileSync(path.join(ctx.profileDir, `ingest-sqlite-${ctx.env.mode}.json`), JSON.stringify({ result: r, summaries }, null, 2) + '\n')
  console.log(text)
}
