import { sql } from 'kysely'
import type { FastifyInstance } from 'fastify'

export async function healthRoutes(app: FastifyInstance) {
  const { storage, metrics } = app.services
  /** Liveness and readiness in one: the database must answer. */
  app.get('/healthz', async (_req, reply) => {
    try {
      await sql`select 1`.execute(storage.db)
      return { status: 'ok', database: 'ok' }
    } catch {
      return reply.code(503).send({ status: 'error', database: 'unreachable' })
    }
  })
  app.get('/metrics', async (_req, reply) => {
    reply.type(metrics.registry.contentType)
    return metrics.registry.metrics()
  })
}
