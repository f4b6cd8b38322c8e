import crypto from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Services } from '../../services.ts'
import type { User } from '../../storage/schema.ts'

declare module 'fastify' {
  interface FastifyRequest {
    user: User | null
    apiClient: { id: number; name: string; userId: number | null } | null
  }
  interface FastifyInstance {
    services: Services
    requireUser: (req: FastifyRequest, reply: FastifyReply) => Promise<void>
    requireAdmin: (req: FastifyRequest, reply: FastifyReply) => Promise<void>
    requireApi: (req: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
}

/** Who is asking: a signed-in portal user (session cookie) or an API client (Bearer token). */
export const authPlugin = fp(
  async (app: FastifyInstance, opts: { services: Services }) => {
    const { users, apiTokens } = opts.services
    app.decorateRequest('user', null)
    app.decorateRequest('apiClient', null)

    app.addHook('preHandler', async (req) => {
      const uid = req.session?.get('uid')
      if (uid) {
        req.user = (await users.byId(uid)) ?? null
        if (!req.user) req.session.delete()
      }
    })

    app.decorate('requireUser', async (req: FastifyRequest, reply: FastifyReply) => {
      if (!req.user) return reply.redirect(`/login?next=${encodeURIComponent(req.url)}`, 303)
    })
    app.decorate('requireAdmin', async (req: FastifyRequest, reply: FastifyReply) => {
      if (!req.user) return reply.redirect(`/login?next=${encodeURIComponent(req.url)}`, 303)
      if (req.user.role !== 'admin') return reply.code(403).type('text/plain').send('Only administrators can open this page.')
    })
    app.decorate('requireApi', async (req: FastifyRequest, reply: FastifyReply) => {
      const header = req.headers.authorization ?? ''
      const m = /^Bearer\s+(\S+)$/i.exec(header)
      const client = m ? await apiTokens.verify(m[1]!) : undefined
      if (!client) {
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer realm="deskmail"')
          .send({ error: 'unauthorized', message: 'Send an API token as "Authorization: Bearer <token>" (create one under Admin > API Tokens).' })
      }
      req.apiClient = client
    })
  },
  { name: 'auth', dependencies: ['security'] },
)

/** Starts a fresh signed-in session (new sid, so nothing from before sign-in carries over). */
export function signIn(req: FastifyRequest, user: User): void {
  req.session.regenerate()
  req.session.set('uid', user.id)
  req.session.set('sid', crypto.randomBytes(16).toString('base64url'))
}

export function setFlash(req: FastifyRequest, kind: 'success' | 'error' | 'info', text: string): void {
  req.session.set('flash', { kind, text })
}

export function takeFlash(req: FastifyRequest): { kind: 'success' | 'error' | 'info'; text: string } | undefined {
  const flash = req.session.get('flash')
  if (flash) req.session.set('flash', undefined)
  return flash
}
