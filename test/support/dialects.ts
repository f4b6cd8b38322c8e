import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createTestDatabase } from '../harness/postgres.ts'
import { openStorage, migrate } from '../../src/storage/database.ts'
import type { Storage } from '../../src/storage/database.ts'

/** Every repository and service test runs on both databases (the kysely way). */
export const dialects = ['sqlite', 'postgres'] as const
export type Dialect = (typeof dialects)[number]

/** A fresh, empty database of the given dialect (a new PostgreSQL database, or a new SQLite file). */
export async function freshDatabaseUrl(dialect: Dialect): Promise<{ url: string; drop(): Promise<void> }> {
  if (dialect === 'postgres') return createTestDatabase()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deskmail-sqlite-'))
  return { url: `sqlite:${path.join(dir, 'test.sqlite')}`, drop: async () => fs.rmSync(dir, { recursive: true, force: true }) }
}

export async function openTestStorage(dialect: Dialect): Promise<{ storage: Storage; url: string; cleanup(): Promise<void> }> {
  const db = await freshDatabaseUrl(dialect)
  const storage = await openStorage(db.url)
  await migrate(storage)
  return {
    storage,
    url: db.url,
    async cleanup() {
      await storage.close()
      await db.drop()
    },
  }
}
