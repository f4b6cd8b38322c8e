import crypto from 'node:crypto'
import fp from 'fastify-plugin'
import formbody from '@fastify/formbody'
import helmet from '@fastify/helmet'
import secureSession from '@fastify/secure-session'
import csrf from '@fastify/csrf-protection'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Services } from '../../services.ts'

export interface SessionData {
  uid?: number
  /** A random id for this sign-in, to bind pending OAuth authorizations to it (RFC 9700 4.7.1). */
  sid?: string
  flash?: { kind: 'success' | 'error' | 'info'; text: string }
}

declare module '@fastify/secure-session' {
  interface SessionData {
    uid?: number
    sid?: string
    flash?: { kind: 'success' | 'error' | 'info'; text: string }
  }
}

/** The paths that take cross-site requests by design and are protected otherwise. */
function csrfExempt(url: string): boolean {
  return url.startsWith('/api/') || url.startsWith('/oauth/callback')
}

/**
 * Forms, encrypted session cookies, CSRF on every state-changing form, and security headers with a
 * strict Content Security Policy (no inline script or style anywhere in the portal).
 */
export const securityPlugin = fp(
  async (app: FastifyInstance, opts: { services: Services }) => {
    const { config, keyring } = opts.services
    await app.register(formbody, { bodyLimit: 1024 * 1024 })
    // The session key is derived from the master key, so no second secret has to be managed.
    const master = keyring.keys.get(keyring.current)!
    const key = Buffer.from(crypto.hkdfSync('sha256', master, Buffer.alloc(0), Buffer.from('deskmail session v1'), 32))
    await app.register(secureSession, {
      key,
      cookieName: 'deskmail_session',
      expiry: 12 * 3600,
      cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: config.secureCookies },
    })
    await app.register(csrf, { sessionPlugin: '@fastify/secure-session', getToken: (req: FastifyRequest) => (req.body as any)?._csrf })
    await app.register(helmet, {
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'", 'data:'],
          fontSrc: ["'self'"],
          connectSrc: ["'self'"],
          frameSrc: ["'self'"],
          frameAncestors: ["'none'"],
          objectSrc: ["'none'"],
          baseUri: ["'none'"],
          formAction: ["'self'"],
        },
      },
      strictTransportSecurity: config.baseUrl.startsWith('https:') ? undefined : false,
      referrerPolicy: { policy: 'no-referrer' },
      crossOriginEmbedderPolicy: false,
    })
    app.addHook('preHandler', (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
      if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS' || csrfExempt(req.url)) return done()
      app.csrfProtection(req, reply, done)
    })
  },
  { name: 'security' },
)
