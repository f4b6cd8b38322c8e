import type { FastifyInstance } from 'fastify'
import { html } from '../html.ts'
import { field } from '../views/layout.ts'
import { csrfField, sendPage } from '../render.ts'
import { signIn } from '../plugins/auth.ts'
import { isAppError } from '../../shared/errors.ts'

/** Failed sign-ins allowed per client address and email within the window, before a pause. */
const MAX_FAILURES = 5
const WINDOW_MS = 15 * 60_000

export async function sessionRoutes(app: FastifyInstance) {
  const { users, logger } = app.services
  const failures = new Map<string, { count: number; first: number }>()

  const safeNext = (next: unknown) => (typeof next === 'string' && /^\/(?!\/)/.test(next) ? next : '/requests')

  app.get('/', async (req, reply) => reply.redirect(req.user ? '/requests' : '/login', 303))

  app.get('/login', async (req, reply) => {
    if (await users.needsSetup()) return reply.redirect('/setup', 303)
    if (req.user) return reply.redirect('/requests', 303)
    const next = safeNext((req.query as any).next)
    return sendPage(req, reply, { title: 'Sign in' }, loginForm(reply, { next }))
  })

  app.post('/login', async (req, reply) => {
    const body = req.body as Record<string, string>
    const email = String(body.email ?? '').trim().toLowerCase()
    const next = safeNext(body.next)
    const key = `${req.ip}|${email}`
    const now = Date.now()
    const f = failures.get(key)
    if (f && now - f.first < WINDOW_MS && f.count >= MAX_FAILURES) {
      const minutes = Math.ceil((f.first + WINDOW_MS - now) / 60_000)
      return sendPage(req, reply, { title: 'Sign in', status: 429, flash: { kind: 'error', text: `Too many failed sign-ins. Try again in ${minutes} minutes.` } }, loginForm(reply, { email, next }))
    }
    const user = await users.authenticate(email, String(body.password ?? ''))
    if (!user) {
      failures.set(key, f && now - f.first < WINDOW_MS ? { count: f.count + 1, first: f.first } : { count: 1, first: now })
      logger.warn({ email, ip: req.ip }, 'sign-in failed')
      return sendPage(req, reply, { title: 'Sign in', status: 401, flash: { kind: 'error', text: 'The email address or password is not correct.' } }, loginForm(reply, { email, next }))
    }
    failures.delete(key)
    signIn(req, user)
    return reply.redirect(next, 303)
  })

  app.post('/logout', async (req, reply) => {
    req.session.delete()
    return reply.redirect('/login', 303)
  })

  app.get('/setup', async (req, reply) => {
    if (!(await users.needsSetup())) return reply.redirect('/login', 303)
    return sendPage(req, reply, { title: 'Set up deskmail' }, setupForm(reply, {}))
  })

  app.post('/setup', async (req, reply) => {
    const body = req.body as Record<string, string>
    try {
      const user = await users.completeSetup({ code: String(body.code ?? ''), email: String(body.email ?? ''), password: String(body.password ?? '') })
      signIn(req, user)
      return reply.redirect('/admin/support-channel/emails', 303)
    } catch (err) {
      if (!isAppError(err)) throw err
      const errors: Record<string, string> = {}
      if (err.code === 'setup_code_invalid') errors.code = err.message
      else if (err.code === 'user_password_weak') errors.password = err.message
      else errors.email = err.message
      return sendPage(req, reply, { title: 'Set up deskmail', status: 400 }, setupForm(reply, { email: body.email, errors }))
    }
  })
}

function loginForm(reply: any, v: { email?: string; next: string }) {
  return html`<section class="card narrow">
  <h1>Sign in to deskmail</h1>
  <form method="post" action="/login" novalidate>
    ${csrfField(reply)}
    <input type="hidden" name="next" value="${v.next}">
    ${field({ label: 'Email', name: 'email', type: 'email', value: v.email, required: true, attrs: html`autocomplete="username"` })}
    ${field({ label: 'Password', name: 'password', type: 'password', required: true, attrs: html`autocomplete="current-password"` })}
    <button type="submit" class="primary">Sign in</button>
  </form>
</section>`
}

function setupForm(reply: any, v: { email?: string; errors?: Record<string, string> }) {
  const e = v.errors ?? {}
  return html`<section class="card narrow">
  <h1>Set up deskmail</h1>
  <p>Create the first administrator. The setup code is printed in the deskmail log when it starts.</p>
  <form method="post" action="/setup" novalidate>
    ${csrfField(reply)}
    ${field({ label: 'Setup code', name: 'code', required: true, error: e.code })}
    ${field({ label: 'Email', name: 'email', type: 'email', value: v.email, required: true, error: e.email })}
    ${field({ label: 'Password', name: 'password', type: 'password', required: true, error: e.password, hint: 'At least 10 characters.' })}
    <button type="submit" class="primary">Create administrator</button>
  </form>
</section>`
}
