import { z } from 'zod'
import type { ApiModule } from './index.ts'

const serverSchema = z.object({
  id: z.number(),
  direction: z.enum(['incoming', 'outgoing']),
  name: z.string(),
  emailAddress: z.string(),
  protocol: z.string(),
  host: z.string(),
  port: z.number(),
  security: z.string(),
  folder: z.string(),
  authType: z.string(),
  provider: z.string().nullable(),
  enabled: z.boolean(),
  status: z.string(),
  statusLabel: z.string(),
  statusMessage: z.string().nullable(),
  account: z.string().nullable(),
  lastSyncAt: z.string().nullable(),
  lastSuccessAt: z.string().nullable(),
  isDefault: z.boolean(),
})

const iso = (ms: number | null) => (ms ? new Date(ms).toISOString() : null)

/** `GET /api/v1/email-servers`: servers with their status, never their secrets. */
export const emailServersApi: ApiModule = (app, api) => {
  api.route(app, {
    method: 'GET',
    path: '/email-servers',
    tag: 'email-servers',
    summary: 'Incoming and outgoing email servers with their status',
    query: z.object({ direction: z.enum(['incoming', 'outgoing']).optional() }),
    response: z.object({ data: z.array(serverSchema) }),
    handler: async ({ query }) => {
      const servers = await app.services.emailServers.list(query.direction)
      return {
        data: servers.map((s) => ({
          id: s.id,
          direction: s.direction,
          name: s.name,
          emailAddress: s.emailAddress,
          protocol: s.protocol,
          host: s.host,
          port: s.port,
          security: s.security,
          folder: s.folder,
          authType: s.authType,
          provider: s.provider,
          enabled: s.enabled,
          status: s.status,
          statusLabel: s.statusLabel,
          statusMessage: s.statusMessage,
          account: s.account,
          lastSyncAt: iso(s.lastSyncAt),
          lastSuccessAt: iso(s.lastSuccessAt),
          isDefault: s.isDefault,
        })),
      }
    },
  })
}
