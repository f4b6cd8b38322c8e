#!/usr/bin/env node
import 'dotenv/config'
import { parseArgs } from 'node:util'
import { loadConfig } from './config/index.ts'
import { isAppError } from './shared/errors.ts'
import { startRuntime } from './runtime.ts'
import { migrate, openStorage } from './storage/database.ts'
import { ApiTokenService } from './accounts/api-tokens.ts'

const usage: Record<string, string> = {
  main: `deskmail: service-desk email channel

Usage: deskmail <command> [options]

Commands:
  serve                       portal and workers in one process (the default)
  web                         portal, API and OAuth callback only (scale-out, PostgreSQL)
  worker [--concurrency N]    mailbox, outbox and token workers only (scale-out, PostgreSQL)
  migrate                     apply database migrations and exit
  api-token create --name N   create an API token and print it once

Configuration comes from the environment (and ./.env): see README.md.
Run "deskmail <command> --help" for a command's options.`,
  serve: 'Usage: deskmail serve\n\nRuns the portal (PORT, DESKMAIL_BASE_URL) and every worker in one process.',
  web: 'Usage: deskmail web\n\nRuns the portal, the REST API and /oauth/callback without workers.',
  worker: 'Usage: deskmail worker [--concurrency N]\n\nRuns the workers only. --concurrency bounds the mailboxes this process holds (default DESKMAIL_WORKER_CONCURRENCY).',
  migrate: 'Usage: deskmail migrate\n\nApplies pending database migrations (also done at every start) and exits.',
  'api-token': 'Usage: deskmail api-token create --name NAME\n\nCreates an API token for /api/v1 and prints it once; only its hash is stored.',
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      concurrency: { type: 'string' },
      name: { type: 'string' },
    },
  })
  const command = positionals[0] ?? 'serve'
  if (!(command in usage) || command === 'main') {
    process.stderr.write(`deskmail: unknown command "${command}"\n\n${usage.main}\n`)
    return 2
  }
  if (values.help) {
    process.stdout.write(`${positionals.length ? usage[command] : usage.main}\n`)
    return 0
  }
  const config = loadConfig()

  if (command === 'migrate') {
    const storage = await openStorage(config.databaseUrl)
    try {
      const applied = await migrate(storage)
      process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n')
    } finally {
      await storage.close()
    }
    return 0
  }

  if (command === 'api-token') {
    if (positionals[1] !== 'create' || !values.name) {
      process.stderr.write(`${usage['api-token']}\n`)
      return 2
    }
    const storage = await openStorage(config.databaseUrl)
    try {
      await migrate(storage)
      const { token } = await new ApiTokenService(storage.db).create(values.name, null)
      process.stdout.write(`${token}\n`)
    } finally {
      await storage.close()
    }
    return 0
  }

  let concurrency: number | undefined
  if (values.concurrency !== undefined) {
    concurrency = Number(values.concurrency)
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      process.stderr.write('deskmail: --concurrency must be a positive whole number\n')
      return 2
    }
  }
  const runtime = await startRuntime(config, {
    web: command !== 'worker',
    workers: command !== 'web',
    worker: { concurrency },
  })
  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    runtime.services.logger.info({ signal }, 'shutting down: finishing work in hand and releasing leases')
    await runtime.stop()
    process.exit(0)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))
  return -1
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code)
  },
  (err) => {
    // Configuration and start-up problems are one clear line, not a stack trace.
    if (isAppError(err)) {
      process.stderr.write(`deskmail: ${err.message}\n`)
      process.exit(1)
    }
    process.stderr.write(`deskmail: unexpected error: ${err?.stack ?? err}\n`)
    process.exit(1)
  },
)
