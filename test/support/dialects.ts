import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { openStorage, migrate } from '../../src/storage/database.ts'
import type { Storage } from '../../src/storage/database.ts'

/** Every repository and service test runs on both databases (the kysely way). */
export const dialects = ['sqlite', 'postgres'] as const
export type Dialect = (typeof dialects)[number]

const adminUrl = process.env.DESKMAIL_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/** A fresh, empty database of the given dialect (a new PostgreSQL database, or a new SQLite file). */
export async function freshDatabaseUrl(dialect: Dialect): Promise<{ url: string; drop(): Promise<void> }> {
  if (dialect === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deskmail-sqlite-'))
    return { url: `sqlite:${path.join(dir, 'test.sqlite')}`, drop: async () => fs.rmSync(dir, { recursive: true, force: true }) }
  }
  const name = `deskmail_test_${crypto.randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  await admin.query(`create database ${name}`)
  await admin.end()
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl })
      await c.connect()
      await c.query(`drop database if exists ${name} with (force)`)
      await c.end()
    },
  }
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
