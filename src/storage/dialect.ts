import type { ColumnDataType } from 'kysely'

/**
 * What differs between our two databases, as capability flags (the kysely way), so that no code
 * outside `storage/` asks "is this SQLite?".
 */
export interface StorageCapabilities {
  /** `SELECT ... FOR UPDATE SKIP LOCKED` exists (PostgreSQL); on SQLite one writer at a time makes it unnecessary. */
  skipLocked: boolean
  /** Several processes may share the database (PostgreSQL); SQLite mode is one process. */
  multiProcess: boolean
  /** Column types for the schema builder. */
  types: { id: ColumnDataType; bigint: ColumnDataType; blob: ColumnDataType }
}

export const sqliteCapabilities: StorageCapabilities = {
  skipLocked: false,
  multiProcess: false,
  types: { id: 'integer', bigint: 'integer', blob: 'blob' },
}

export const postgresCapabilities: StorageCapabilities = {
  skipLocked: true,
  multiProcess: true,
  types: { id: 'serial', bigint: 'bigint', blob: 'bytea' },
}
