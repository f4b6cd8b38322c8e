/**
 * End-to-end throughput of `IngestPipeline.ingestBatch` (parse on the pool, filters, sanitize,
 * one transaction per batch) on the benchmark corpus, for SQLite and PostgreSQL, against the
 * parser pool alone on the same messages as the baseline. Batches are handed over one at a time
 * ("sequential") and with the next batch handed over before the previous one commits
 * ("2 in flight", which the pipeline allows: commits stay in call order). Not a test:
 *   node --import tsx test/pipeline/measure-throughput.ts [messages=2000] [batch=250] [dialects=sqlite,postgres] [workers]
 * CPU time counts every thread of the process (the steadier figure on a shared machine).
 */
import { createParserPool, defaultPoolSize } from '../../src/mail/mime/parser-pool.ts'
import type { IngestOutcomeRow } from '../../src/ingest/pipeline.ts'
import { generateCorpus } from '../../bench/corpus.ts'
import type { Dialect } from '../support/dialects.ts'
import { startPipelineWorld } from './support.ts'

const count = Number(process.argv[2] ?? 2000)
const batchSize = Number(process.argv[3] ?? 250)
const dialects = (process.argv[4] ?? 'sqlite,postgres').split(',') as Dialect[]
const workers = Number(process.argv[5] ?? defaultPoolSize())
const corpus = generateCorpus(count)
const warmup = generateCorpus(300, 7)
const bytes = corpus.reduce((n, r) => n + r.length, 0)
console.log(`${count} messages, ${(bytes / 1024 / 1024).toFixed(1)} MiB, batches of ${batchSize}, ${workers} parser worker(s)`)

// The baseline does what the pipeline asks of the pool: parse and sanitize.
const pool = createParserPool({ size: workers })
for (const raw of warmup) await pool.parse(raw, { sanitizeHtml: true })
let start = performance.now()
const parseCpu = process.cpuUsage()
await Promise.all(corpus.map((raw) => pool.parse(raw, { sanitizeHtml: true })))
const parseRate = (count / (performance.now() - start)) * 1000
const parseUsed = process.cpuUsage(parseCpu)
await pool.close()
// CPU time (all threads of this process) is the steadier figure on a shared machine.
console.log(
  `baseline: parser pool alone (parse + sanitize)  ${parseRate.toFixed(0).padStart(6)} messages/s  (CPU ${((parseUsed.user + parseUsed.system) / 1000).toFixed(0)} ms)`,
)

for (const dialect of dialects) {
  for (const inFlight of [1, 2]) {
    const world = await startPipelineWorld(dialect, { parserOptions: { size: workers } })
    try {
      await world.pipeline.ingestBatch(world.server, warmup.map((raw, j) => ({ sourceKey: `warm:${j}`, raw })))
      const cpu = process.cpuUsage()
      start = performance.now()
      const pending: Array<Promise<IngestOutcomeRow[]>> = []
      let stored = 0
      for (let i = 0; i < corpus.length; i += batchSize) {
        const batch = corpus.slice(i, i + batchSize).map((raw, j) => ({ sourceKey: `imap:1:${i + j + 1}`, raw }))
        pending.push(world.pipeline.ingestBatch(world.server, batch))
        if (pending.length >= inFlight) stored += (await pending.shift()!).filter((o) => o.outcome !== 'duplicate').length
      }
      for (const p of pending) stored += (await p).filter((o) => o.outcome !== 'duplicate').length
      const ms = performance.now() - start
      const used = process.cpuUsage(cpu)
      const rate = (count / ms) * 1000
      console.log(
        `ingestBatch ${dialect.padEnd(8)} ${inFlight === 1 ? 'sequential ' : '2 in flight'}  ${rate.toFixed(0).padStart(6)} messages/s` +
          `  (${ms.toFixed(0)} ms, CPU ${((used.user + used.system) / 1000).toFixed(0)} ms, ${stored} stored, ${(rate / parseRate).toFixed(2)}x the pool alone, RSS ${(process.memoryUsage().rss / 1048576).toFixed(0)} MB)`,
      )
    } finally {
      await world.cleanup()
    }
  }
}
