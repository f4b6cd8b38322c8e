import fs from 'node:fs'
import path from 'node:path'
import SqliteDatabase from 'better-sqlite3'
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely'
import type { Migration, MigrationProvider } from 'kysely'
import pg from 'pg'
import { AppError } from '../shared/errors.ts'
import { postgresCapabilities, sqliteCapabilities } from './dialect.ts'
import type { StorageCapabilities } from './dialect.ts'
import { initialMigration } from './migrations/001-initial.ts'
import type { Database } from './schema.ts'

export type Db = Kysely<Database>

export interface Storage {
  db: Db
  caps: StorageCapabilities
  /** Where the data lives, for messages (no password). */
  describe: string
  close(): Promise<void>
}

// PostgreSQL returns int8 (bigint, count(*)) as strings; our bigints are millisecond timestamps and
// counts, well inside Number's safe range, so parse them once here for every query.
pg.types.setTypeParser(20, (v) => Number.parseInt(v, 10))

/**
 * Opens the database named by `databaseUrl`: `postgres://` / `postgresql://` for PostgreSQL,
 * `sqlite:<path>` or a plain path for SQLite (`:memory:` for an in-memory one).
 * Throws an AppError with one clear sentence when it cannot be reached.
 */
export async function openStorage(databaseUrl: string, options: { lock?: boolean } = {}): Promise<Storage> {
  if (/^postgres(ql)?:\/\//.test(databaseUrl)) return openPostgres(databaseUrl)
  return openSqlite(databaseUrl.replace(/^sqlite:(\/\/)?/, ''), options.lock ?? false)
}

async function openPostgres(url: string): Promise<Storage> {
  let safe: string
  try {
    const u = new URL(url)
    u.password = ''
    safe = u.toString()
  } catch {
    throw new AppError('database_url_invalid', 'DATABASE_URL is not a valid URL')
  }
  const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 5000 })
  // An idle client that loses its connection emits 'error' on the pool; without a listener that
  // would crash the process. The next query gets a fresh connection.
  pool.on('error', () => {})
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
  try {
    await sql`select 1`.execute(db)
  } catch (err) {
    await db.destroy().catch(() => {})
    throw new AppError('database_unreachable', `cannot connect to PostgreSQL at ${safe}: ${(err as Error).message}`, {
      cause: err,
    })
  }
  return { db, caps: postgresCapabilities, describe: `PostgreSQL ${safe}`, close: () => db.destroy() }
}

async function openSqlite(file: string, lock: boolean): Promise<Storage> {
  const inMemory = file === ':memory:' || file === ''
  let release = () => {}
  if (!inMemory) {
    const dir = path.dirname(path.resolve(file))
    try {
      fs.mkdirSync(dir, { recursive: true })
      fs.accessSync(dir, fs.constants.W_OK)
    } catch (err) {
      throw new AppError('database_dir_not_writable', `cannot write the SQLite database directory ${dir}`, { cause: err })
    }
    if (lock) release = lockSqliteFile(path.resolve(file))
  }
  let handle: SqliteDatabase.Database
  try {
    handle = new SqliteDatabase(inMemory ? ':memory:' : file)
    handle.pragma('journal_mode = WAL')
    handle.pragma('synchronous = NORMAL')
    handle.pragma('busy_timeout = 5000')
    handle.pragma('foreign_keys = ON')
  } catch (err) {
    release()
    throw new AppError('database_unreachable', `cannot open the SQLite database ${file}: ${(err as Error).message}`, {
      cause: err,
    })
  }
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: handle }) })
  return {
    db,
    caps: sqliteCapabilities,
    describe: `SQLite ${inMemory ? ':memory:' : path.resolve(file)}`,
    async close() {
      await db.destroy()
      release()
    },
  }
}

/**
 * SQLite mode is one process (DESIGN.md): a second process on the same file would race on the
 * mailbox cursors without leases. A lock file with our pid refuses it with a clear message; a lock
 * left by a dead process is taken over.
 */
function lockSqliteFile(dbFile: string): () => void {
  const lockFile = `${dbFile}.lock`
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockFile, String(process.pid), { flag: 'wx', mode: 0o600 })
      return () => {
        try {
          if (fs.readFileSync(lockFile, 'utf8') === String(process.pid)) fs.unlinkSync(lockFile)
        } catch {}
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const pid = Number.parseInt(fs.readFileSync(lockFile, 'utf8'), 10)
      if (pid && pid !== process.pid && isAlive(pid)) {
        throw new AppError(
          'sqlite_in_use',
          `another deskmail process (pid ${pid}) is using ${dbFile}; SQLite mode runs one process (use PostgreSQL for separate web and worker processes)`,
        )
      }
      fs.rmSync(lockFile, { force: true })
    }
  }
  throw new AppError('sqlite_in_use', `cannot lock ${dbFile}`)
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Applies every pending migration; safe to run at each start and from several processes. */
export async function migrate(storage: Storage): Promise<string[]> {
  const migrations: Record<string, Migration> = {
    '001-initial': initialMigration(storage.caps),
  }
  const provider: MigrationProvider = { getMigrations: async () => migrations }
  const migrator = new Migrator({ db: storage.db, provider })
  const { error, results } = await migrator.migrateToLatest()
  if (error) throw new AppError('migration_failed', `database migration failed: ${(error as Error).message}`, { cause: error })
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName)
}
