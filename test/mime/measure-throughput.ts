/**
 * Parse throughput on a generated mixed mailbox: in-process `parseMail`, the pool with 1 worker
 * and the pool with one worker per core. Not a test (no timing assertions); run with
 *   node --import tsx test/mime/measure-throughput.ts [messages=2000]
 * It first prints how well this machine runs two CPU-bound threads at once (the baseline the
 * pool's speed-up is bounded by: on a VM whose vCPUs share a physical core it is about 1x).
 */
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { parseMail } from '../../src/mail/mime/parse-mail.ts'
import { createParserPool } from '../../src/mail/mime/parser-pool.ts'
import { mixedMessage } from '../fixtures/mail/generate.ts'

const count = Number(process.argv[2] ?? 2000)
const corpus = Array.from({ length: count }, (_, i) => mixedMessage(i))
const bytes = corpus.reduce((sum, raw) => sum + raw.length, 0)

const rounds = 3

/** Best of `rounds` runs of `run` (the machine may be shared); CPU time counts every thread. */
async function measure(label: string, run: () => Promise<void>): Promise<number> {
  let best = { ms: Infinity, cpuMs: 0 }
  for (let round = 0; round < rounds; round++) {
    const cpu = process.cpuUsage()
    const start = performance.now()
    await run()
    const ms = performance.now() - start
    const used = process.cpuUsage(cpu)
    if (ms < best.ms) best = { ms, cpuMs: (used.user + used.system) / 1000 }
  }
  const rate = (count / best.ms) * 1000
  const perCpuSecond = (count / best.cpuMs) * 1000
  console.log(
    `${label.padEnd(26)} ${best.ms.toFixed(0).padStart(6)} ms wall ${rate.toFixed(0).padStart(6)} msg/s` +
      `   (CPU ${best.cpuMs.toFixed(0)} ms, ${perCpuSecond.toFixed(0)} messages per CPU-second)`,
  )
  return rate
}

console.log(`${count} messages, ${(bytes / 1024 / 1024).toFixed(1)} MiB, ${availableParallelism()} cores`)

/** Wall time of `threads` workers each running the same pure CPU loop. */
async function spin(threads: number): Promise<number> {
  const loop =
    'let x = 0; for (let i = 0; i < 1e8; i++) x = (x + i * 7) % 1000003;' +
    "require('node:worker_threads').parentPort.postMessage(x)"
  const run = () => new Promise((resolve) => new Worker(loop, { eval: true }).once('message', resolve))
  const start = performance.now()
  await Promise.all(Array.from({ length: threads }, run))
  return performance.now() - start
}
const cores = availableParallelism()
const spinOne = await spin(1)
const spinAll = await spin(cores)
const machineScaling = (spinOne * cores) / spinAll
console.log(`baseline: ${cores} threads of a CPU loop do ${machineScaling.toFixed(2)}x the work of 1 thread`)

// Warm-up so that JIT and module loading do not count against the first run.
for (const raw of corpus.slice(0, 200)) await parseMail(raw)

const inProcess = await measure('in-process, sequential', async () => {
  for (const raw of corpus) await parseMail(raw)
})

async function measurePool(size: number): Promise<number> {
  const pool = createParserPool({ size })
  try {
    await Promise.all(corpus.slice(0, 300).map((raw) => pool.parse(raw))) // workers started and warm
    return await measure(`pool, ${size} worker(s)`, async () => {
      await Promise.all(corpus.map((raw) => pool.parse(raw)))
    })
  } finally {
    await pool.close()
  }
}

const one = await measurePool(1)
const all = await measurePool(cores)
console.log(`pool(${cores}) / pool(1): ${(all / one).toFixed(2)}x`)
console.log(`pool(1) / in-process: ${(one / inProcess).toFixed(2)}x`)
