/**
 * A fresh, uniquely named PostgreSQL database per test file on the local server
 * (127.0.0.1:5432, user postgres, trust authentication), dropped afterwards.
 * `DESKMAIL_TEST_PG_ADMIN_URL` overrides the server to connect to.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'

export interface TestDatabase {
  /** Connection string of the new database. */
  url: string
  name: string
  /** Terminates every connection to the database, then drops it. Idempotent. */
  drop(): Promise<void>
}

const ADMIN_URL = process.env.DESKMAIL_TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

async function withAdmin<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL })
  await client.connect()
  try {
    return await run(client)
  } finally {
    await client.end()
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  // Only [a-z0-9_]: the name is interpolated into DDL, which takes no bind parameters.
  const name = `deskmail_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`
  await withAdmin((client) => client.query(`CREATE DATABASE "${name}"`))
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  let dropped = false
  return {
    url: url.href,
    name,
    drop: async () => {
      if (dropped) return
      dropped = true
      await withAdmin(async (client) => {
        // A pool the test forgot to end would make DROP DATABASE fail.
        await client.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [name],
        )
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
      })
    },
  }
}
