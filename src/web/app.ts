import path from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify, { LogController } from 'fastify'
import type { FastifyBaseLogger, FastifyError, FastifyInstance } from 'fastify'
import fastifyStatic from '@fastify/static'
import type { Services } from '../services.ts'
import { isAppError } from '../shared/errors.ts'
import { securityPlugin } from './plugins/security.ts'
import { authPlugin } from './plugins/auth.ts'
import { sessionRoutes } from './routes/session.ts'
import { healthRoutes } from './routes/health.ts'
import { apiRoutes } from './routes/api/index.ts'
import type { ApiModule } from './routes/api/index.ts'
import { apiTokenRoutes } from './routes/admin/api-tokens.ts'
import { httpStatusFor } from './http-errors.ts'
import { placeholderRoutes } from './routes/placeholders.ts'

const here = path.dirname(fileURLToPath(import.meta.url))

export interface WebModule {
  /** Fastify plugin with portal pages and form handlers. */
  routes?: (app: FastifyInstance) => Promise<void>
  /** Routes under /api/v1. */
  api?: ApiModule
}

/**
 * The web process: portal pages, REST API, OAuth callback, health and metrics. Feature modules
 * (email servers, requests, ...) plug in as `WebModule`s so this file stays wiring only.
 */
export async function buildApp(services: Services, modules: WebModule[] = []): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: services.logger.child({ component: 'web' }) as FastifyBaseLogger,
    // Fastify's own request log prints the URL with its query string, and the OAuth callback carries
    // `code` and `state` there: we log requests ourselves, path only.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: true,
    bodyLimit: 30 * 1024 * 1024,
  })
  app.decorate('services', services)

  app.addHook('onResponse', async (req, reply) => {
    services.metrics.httpRequests.inc({ method: req.method, status: String(reply.statusCode) })
    req.log.info(
      { method: req.method, path: req.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      'request',
    )
  })

  await app.register(securityPlugin, { services })
  await app.register(authPlugin, { services })
  await app.register(fastifyStatic, { root: path.join(here, 'assets'), prefix: '/assets/', cacheControl: true, maxAge: 3600_000 })

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (isAppError(err)) {
      const status = httpStatusFor(err)
      if (status >= 500) req.log.error({ err: { code: err.code, message: err.message } }, 'request failed')
      if (req.url.startsWith('/api/')) return reply.code(status).send({ error: err.code, message: err.message })
      return reply.code(status).type('text/plain; charset=utf-8').send(err.message)
    }
    if ((err as any).code === 'FST_CSRF_INVALID_TOKEN' || (err as any).code === 'FST_CSRF_MISSING_SECRET') {
      return reply.code(403).type('text/plain; charset=utf-8').send('This form has expired. Go back, reload the page and try again.')
    }
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send({ error: err.code ?? 'bad_request', message: err.message })
    req.log.error({ err }, 'unhandled error')
    // 5xx details stay in the log; the client gets a plain sentence.
    return reply.code(500).send({ error: 'internal_error', message: 'Something went wrong on the server. The details are in the deskmail log.' })
  })

  await app.register(healthRoutes)
  await app.register(sessionRoutes)
  await app.register(apiTokenRoutes)
  for (const m of modules) if (m.routes) await app.register(m.routes)
  await app.register(placeholderRoutes)
  await app.register(apiRoutes, { modules: modules.flatMap((m) => (m.api ? [m.api] : [])) })
  return app
}
