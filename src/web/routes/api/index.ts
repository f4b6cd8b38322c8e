import { z } from 'zod'
import type { FastifyInstance } from 'fastify'
import { ApiRegistry } from './openapi.ts'

/** Registers the REST API. Each resource module adds its routes to the registry. */
export type ApiModule = (app: FastifyInstance, api: ApiRegistry) => void

export async function apiRoutes(app: FastifyInstance, opts: { modules: ApiModule[] }) {
  const api = new ApiRegistry()
  api.route(app, {
    method: 'GET',
    path: '/me',
    tag: 'meta',
    summary: 'The API token in use',
    response: z.object({ tokenId: z.number(), name: z.string() }),
    handler: async ({ req }) => ({ tokenId: req.apiClient!.id, name: req.apiClient!.name }),
  })
  for (const m of opts.modules) m(app, api)
  app.get('/api/v1/openapi.json', async () => api.document({ title: 'deskmail API', version: '1' }))
}
