import crypto from 'node:crypto'
import type { Db } from '../storage/database.ts'

/**
 * API tokens: shown once at creation, stored as a SHA-256 hash (they are random 256-bit values,
 * so a fast hash is enough; no password stretching needed).
 */
export class ApiTokenService {
  constructor(private readonly db: Db) {}

  async create(name: string, userId: number | null): Promise<{ id: number; token: string }> {
    const token = `dmk_${crypto.randomBytes(32).toString('base64url')}`
    const row = await this.db
      .insertInto('api_tokens')
      .values({ name: name.trim() || 'API token', token_hash: hash(token), token_prefix: token.slice(0, 10), user_id: userId, created_at: Date.now() })
      .returning('id')
      .executeTakeFirstOrThrow()
    return { id: row.id, token }
  }

  async verify(token: string): Promise<{ id: number; name: string; userId: number | null } | undefined> {
    const row = await this.db
      .selectFrom('api_tokens')
      .select(['id', 'name', 'user_id', 'last_used_at'])
      .where('token_hash', '=', hash(token))
      .where('revoked_at', 'is', null)
      .executeTakeFirst()
    if (!row) return undefined
    // Touch at most once a minute: a busy API client should not turn every read into a write.
    if (!row.last_used_at || Date.now() - row.last_used_at > 60_000) {
      await this.db.updateTable('api_tokens').set({ last_used_at: Date.now() }).where('id', '=', row.id).execute()
    }
    return { id: row.id, name: row.name, userId: row.user_id }
  }

  list() {
    return this.db
      .selectFrom('api_tokens')
      .select(['id', 'name', 'token_prefix', 'created_at', 'last_used_at', 'revoked_at'])
      .orderBy('id', 'desc')
      .execute()
  }

  async revoke(id: number): Promise<void> {
    await this.db.updateTable('api_tokens').set({ revoked_at: Date.now() }).where('id', '=', id).execute()
  }
}

function hash(token: string): string {
  return crypto.createHash('sha256').update(token).digest('hex')
}
