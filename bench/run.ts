/**
 * deskmail benchmarks: `npm run bench` (full) or `npm run bench -- --quick` (under two minutes).
 *
 * Starts the real servers (the stand-in OAuth 2.0 server and a private Dovecot, as the tests do),
 * then runs each figure: the product and its baselines each in a child process of its own (so
 * that RSS and CPU are their own), prints a table and writes bench/results.json (full) or
 * bench/results.quick.json (quick). Every server started here is stopped before exit.
 *
 * Options:
 *   --quick          smaller sizes (whole run under two minutes)
 *   --only=a,b       run some figures only: ingest, push, idle, large, many (writes *.partial.json)
 *   --profile        also profile the SQLite ingestion with --cpu-prof and summarize it
 *   --verbose        show the children's output as it comes
 *
 * Benchmarks are not tests: a missed target is reported, not failed. The exit code is 1 only
 * when a figure could not be measured at all.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { childFactory } from './lib/context.ts'
import type { FigureRunner, RunContext } from './lib/context.ts'
import { benchDir } from './lib/ipc.ts'
import { environment, failedFigure, header, table } from './lib/report.ts'
import type { Figure, Results } from './lib/report.ts'
import { startWorld } from './lib/world.ts'
import { ingestFigures } from './figures/ingest.ts'
import { pushFigures } from './figures/push.ts'
import { idleFigures } from './figures/idle.ts'
import { largeMailFigures } from './figures/large-mail.ts'
import { manyMailboxesFigures } from './figures/many-mailboxes.ts'
import { profileIngest } from './figures/profile.ts'

type Fallback = Pick<Figure, 'id' | 'name' | 'unit' | 'better' | 'target'> & { baselineName: string }

/** Placeholder figures (same ids as the real ones) for a runner that failed as a whole. */
function fallbacks(ids: string[], name: string, unit: string, better: Figure['better'], baselineName: string): Fallback[] {
  return ids.map((id) => ({ id, name: `${name} (${id})`, unit, better, target: null, baselineName }))
}

const runners: Array<{ key: string; run: FigureRunner; fallback: Fallback[] }> = [
  {
    key: 'ingest',
    run: ingestFigures,
    fallback: fallbacks(
      ['ingest.sqlite.rate', 'ingest.sqlite.rss', 'ingest.postgres.rate', 'ingest.postgres.rss'],
      'Ingestion',
      'msg/s',
      'higher',
      'imapflow download',
    ),
  },
  {
    key: 'push',
    run: pushFigures,
    fallback: fallbacks(['push.p50', 'push.p95', 'push.p99'], 'Push latency', 'ms', 'lower', "imapflow 'exists'"),
  },
  {
    key: 'idle',
    run: idleFigures,
    fallback: fallbacks(['idle.commands', 'idle.bytes', 'idle.time'], 'Idle sync', 'commands', 'equal', 'smaller mailbox'),
  },
  {
    key: 'large',
    run: largeMailFigures,
    fallback: fallbacks(['large.rss-growth'], 'Large mail RSS growth', 'MB', 'lower', 'imapflow download'),
  },
  {
    key: 'many',
    run: manyMailboxesFigures,
    fallback: fallbacks(['many.rss', 'many.cpu'], 'Many mailboxes', 'MB', 'lower', 'plain imapflow IDLE connections'),
  },
]

function parseArgs(argv: string[]) {
  const flags = new Set(argv.filter((a) => a.startsWith('--') && !a.includes('=')))
  const only = argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',').filter(Boolean)
  const known = ['--quick', '--verbose', '--profile', '--help']
  const unknown = argv.filter((a) => !known.includes(a) && !a.startsWith('--only='))
  if (unknown.length || flags.has('--help')) {
    console.log('usage: npm run bench -- [--quick] [--only=ingest,push,idle,large,many] [--profile] [--verbose]')
    process.exit(unknown.length ? 2 : 0)
  }
  for (const key of only ?? []) {
    if (!runners.some((r) => r.key === key)) {
      console.error(`unknown figure "${key}" (known: ${runners.map((r) => r.key).join(', ')})`)
      process.exit(2)
    }
  }
  return { quick: flags.has('--quick'), verbose: flags.has('--verbose'), profile: flags.has('--profile'), only }
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2))
  const started = performance.now()
  const env = environment(args.quick ? 'quick' : 'full')
  const log = (message: string) =>
    console.error(`[bench +${((performance.now() - started) / 1000).toFixed(1)}s] ${message}`)
  log(`deskmail benchmarks (${env.mode}) on ${env.cores} cores, commit ${env.commit.slice(0, 12)}`)

  const world = await startWorld()
  const stopWorld = () => world.stop()
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping the servers`)
    void stopWorld().finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  const profileDir = path.join(benchDir, 'profiles')
  const ctx: RunContext = {
    world,
    env,
    quick: args.quick,
    verbose: args.verbose,
    profile: args.profile,
    profileDir,
    log,
    child: childFactory({ caCertPath: world.info.caCertPath, verbose: args.verbose }),
  }

  const figures: Figure[] = []
  try {
    for (const runner of runners) {
      if (args.only && !args.only.includes(runner.key)) continue
      const t = performance.now()
      try {
        figures.push(...(await runner.run(ctx)))
      } catch (err) {
        log(`${runner.key} failed: ${(err as Error).stack ?? err}`)
        figures.push(...runner.fallback.map((f) => failedFigure(env, f, err)))
      }
      log(`${runner.key} done in ${((performance.now() - t) / 1000).toFixed(1)} s`)
    }
    if (args.profile) {
      try {
        await profileIngest(ctx)
      } catch (err) {
        log(`profiling failed: ${(err as Error).stack ?? err}`)
      }
    }
  } finally {
    await stopWorld()
  }

  const results: Results = {
    ...env,
    durationMs: performance.now() - started,
    loadAverageAtEnd: Math.round(os.loadavg()[0]! * 100) / 100,
    figures,
  }
  const name = `results${args.quick ? '.quick' : ''}${args.only ? '.partial' : ''}.json`
  const file = path.join(benchDir, name)
  fs.writeFileSync(file, JSON.stringify(results, null, 2) + '\n')
  console.log(header(results))
  console.log('')
  console.log(table(results))
  console.log('')
  console.log(`written: ${path.relative(process.cwd(), file)}`)
  const failed = figures.filter((f) => f.error)
  if (failed.length) {
    console.error(`${failed.length} figure(s) could not be measured: ${failed.map((f) => f.id).join(', ')}`)
  }
  return failed.length ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
