import fs from 'node:fs'
import pg from 'pg'
import { runChild } from './ipc.ts'
import type { ChildHandle, Handlers } from './ipc.ts'
import type { Environment, Figure } from './report.ts'
import type { World } from './world.ts'

/** What every figure's orchestration gets from bench/run.ts. */
export interface RunContext {
  world: World
  env: Environment
  quick: boolean
  verbose: boolean
  /** Re-run the measured product with `--cpu-prof` and summarize the profile (slow; for analysis). */
  profile: boolean
  /** Where profiles are written (bench/profiles). */
  profileDir: string
  log(message: string): void
  /** Starts a measurement child with the run's environment (CA for the test servers' TLS). */
  child<T>(task: string, args: unknown, opts: { timeoutMs: number; handlers?: Handlers; cpuProfDir?: string }): ChildHandle<T>
}

export type FigureRunner = (ctx: RunContext) => Promise<Figure[]>

export function childFactory(base: { caCertPath: string; verbose: boolean }): RunContext['child'] {
  return (task, args, opts) => {
    const handle = runChild<any>({
      task,
      args,
      handlers: opts.handlers,
      timeoutMs: opts.timeoutMs,
      cpuProfDir: opts.cpuProfDir,
      verbose: base.verbose,
      // Our code verifies certificates; the test servers' private CA is trusted the standard Node way.
      env: { NODE_EXTRA_CA_CERTS: base.caCertPath },
    })
    // A product child announces its data directory and database; a child that was killed (or
    // crashed) could not remove them itself. Removing them again after a clean exit is harmless.
    const leftovers: Array<{ dir?: string; pgDatabase?: string }> = []
    handle.events.on('leftovers', (l: { dir?: string; pgDatabase?: string }) => leftovers.push(l))
    handle.events.once('exit', () => {
      for (const l of leftovers) {
        if (l.dir) fs.rmSync(l.dir, { recursive: true, force: true })
        if (l.pgDatabase) void dropDatabase(l.pgDatabase).catch(() => {})
      }
    })
    return handle
  }
}

async function dropDatabase(name: string): Promise<void> {
  // Only names our harness creates: the name goes into DDL, which takes no bind parameters.
  if (!/^deskmail_test_[a-z0-9_]+$/.test(name)) return
  const client = new pg.Client({ connectionString: process.env.DESKMAIL_TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test' })
  await client.connect()
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
  } finally {
    await client.end()
  }
}
