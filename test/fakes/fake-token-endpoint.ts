/**
 * An in-process OAuth 2.0 token endpoint (RFC 6749 section 3.2) that answers each POST /token per a
 * script, with the error bodies Google and Microsoft document (PROVIDERS.md), and records what was
 * sent. For the faults the oidc-provider stand-in will not produce: a Google `invalid_grant`,
 * Microsoft `AADSTS700082`, an HTTP 500, a hang, a redirect.
 *
 * ```ts
 * const token = await startFakeTokenEndpoint(['success', 'invalid_grant'])
 * after(() => token.close())
 * // ...configure the credential with token.url, refresh twice...
 * assert.equal(token.requests[0].form.grant_type, 'refresh_token')
 * ```
 *
 * The script is one step (used for every request), an array (one step per request, in order; past
 * its end the endpoint answers 500 "script exhausted"), or a function of the request.
 */
import http from 'node:http'
import type net from 'node:net'

/** Google's body for a dead refresh token (PROVIDERS.md, Google). */
export const GOOGLE_INVALID_GRANT = {
  error: 'invalid_grant',
  error_description: 'Token has been expired or revoked.',
}

/**
 * Google's body when a session-control policy demands re-authentication (`error_subtype`,
 * PROVIDERS.md). The description and error_uri are as commonly reported, not from Google's reference.
 */
export const GOOGLE_INVALID_RAPT = {
  error: 'invalid_grant',
  error_description: 'reauth related error (invalid_rapt)',
  error_uri: 'https://support.google.com/a/answer/9368756',
  error_subtype: 'invalid_rapt',
}

/** Google's body for a wrong client secret (HTTP 401). */
export const GOOGLE_INVALID_CLIENT = { error: 'invalid_client', error_description: 'Unauthorized' }

/** The fixed IDs the Microsoft error bodies carry, so tests can assert they are logged. */
export const FAKE_CORRELATION_ID = '8c5b1f0e-0000-4000-8000-00000000c0de'
export const FAKE_TRACE_ID = '2f1d9a4b-0000-4000-8000-00000000face'

/**
 * A Microsoft identity platform error body: `error_codes` holds the AADSTS number, `correlation_id`
 * and `trace_id` identify the request for Microsoft support.
 * @see https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
 */
export function microsoftError(error: string, aadsts: number, description: string): Record<string, unknown> {
  const timestamp = '2024-01-01 00:00:00Z'
  return {
    error,
    error_description: [
      `AADSTS${aadsts}: ${description}`,
      `Trace ID: ${FAKE_TRACE_ID}`,
      `Correlation ID: ${FAKE_CORRELATION_ID}`,
      `Timestamp: ${timestamp}`,
    ].join('\r\n'),
    error_codes: [aadsts],
    timestamp,
    trace_id: FAKE_TRACE_ID,
    correlation_id: FAKE_CORRELATION_ID,
    error_uri: `https://login.microsoftonline.com/error?code=${aadsts}`,
  }
}

export type TokenStep =
  /** 200 with a token response; `body` fields override the defaults (access_token, token_type, expires_in, scope). */
  | { type: 'success'; body?: Record<string, unknown> }
  /** 400, Google: `Token has been expired or revoked.` */
  | { type: 'invalid_grant' }
  /** 400, Google: `error_subtype: invalid_rapt`. */
  | { type: 'invalid_rapt' }
  /** 401, `invalid_client`. */
  | { type: 'invalid_client' }
  /** 400, Microsoft: refresh token expired after 90 days of inactivity. */
  | { type: 'aadsts700082' }
  /** 400, Microsoft: redirect URI mismatch. */
  | { type: 'aadsts50011'; redirectUri?: string }
  /** 500 with an HTML body, as a failing front end sends. */
  | { type: 'http_500' }
  /** Never answers (until close()): for client timeouts. */
  | { type: 'hang' }
  /** A redirect (default 307 to `/elsewhere` on this server, which would answer success): clients must not follow it. */
  | { type: 'redirect'; status?: 301 | 302 | 303 | 307 | 308; location?: string }
  /** Anything else. */
  | { type: 'raw'; status: number; headers?: Record<string, string>; body: string }

export type TokenStepName = Exclude<TokenStep['type'], 'raw'>

export interface RecordedTokenRequest {
  method: string
  /** Path and query, e.g. `/token`. */
  path: string
  headers: http.IncomingHttpHeaders
  body: string
  /** The body parsed as application/x-www-form-urlencoded (empty if it is not). */
  form: Record<string, string>
  /** From an `Authorization: Basic` header (client_secret_basic), decoded per RFC 6749 section 2.3.1. */
  basicAuth?: { clientId: string; clientSecret: string }
}

export type TokenScript =
  | TokenStep
  | TokenStepName
  | Array<TokenStep | TokenStepName>
  | ((request: RecordedTokenRequest, index: number) => TokenStep | TokenStepName)

export interface FakeTokenEndpoint {
  /** `http://127.0.0.1:<port>/token` */
  url: string
  port: number
  /** Every request received, on any path, in order. */
  requests: RecordedTokenRequest[]
  /** Token requests answered so far (POST to the token path). */
  tokenRequests(): RecordedTokenRequest[]
  close(): Promise<void>
}

function normalize(step: TokenStep | TokenStepName): TokenStep {
  return typeof step === 'string' ? ({ type: step } as TokenStep) : step
}

function json(status: number, body: unknown, extra: Record<string, string> = {}) {
  // RFC 6749 section 5.1: token responses must not be cached.
  return {
    status,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      pragma: 'no-cache',
      ...extra,
    },
    body: JSON.stringify(body),
  }
}

let tokenCounter = 0

type HttpAnswer = { status: number; headers: Record<string, string>; body: string }

function answer(step: TokenStep, baseUrl: string): HttpAnswer | 'hang' {
  switch (step.type) {
    case 'success':
      tokenCounter++
      return json(200, {
        access_token: `fake-access-token-${tokenCounter}`,
        token_type: 'Bearer',
        expires_in: 3599,
        scope: 'https://mail.google.com/',
        ...step.body,
      })
    case 'invalid_grant':
      return json(400, GOOGLE_INVALID_GRANT)
    case 'invalid_rapt':
      return json(400, GOOGLE_INVALID_RAPT)
    case 'invalid_client':
      return json(401, GOOGLE_INVALID_CLIENT, { 'www-authenticate': 'Basic realm="token"' })
    case 'aadsts700082':
      return json(
        400,
        microsoftError(
          'invalid_grant',
          700082,
          'The refresh token has expired due to inactivity. The token was issued on 2023-09-01T00:00:00.0000000Z and was inactive for 90.00:00:00.',
        ),
      )
    case 'aadsts50011':
      return json(
        400,
        microsoftError(
          'invalid_request',
          50011,
          `The redirect URI '${step.redirectUri ?? 'https://deskmail.example/oauth/callback'}' specified in the request does not match the redirect URIs configured for the application '00000000-0000-0000-0000-000000000000'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal.`,
        ),
      )
    case 'http_500':
      return {
        status: 500,
        headers: { 'content-type': 'text/html; charset=utf-8' },
        body: '<html><body><h1>500 Internal Server Error</h1></body></html>',
      }
    case 'hang':
      return 'hang'
    case 'redirect':
      return {
        status: step.status ?? 307,
        headers: { location: step.location ?? `${baseUrl}/elsewhere` },
        body: '',
      }
    case 'raw':
      return { status: step.status, headers: step.headers ?? {}, body: step.body }
  }
}

function parseBasic(header: string | undefined): RecordedTokenRequest['basicAuth'] {
  const match = /^Basic\s+(\S+)$/i.exec(header ?? '')
  if (!match) return undefined
  const decoded = Buffer.from(match[1], 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  // RFC 6749 section 2.3.1: both parts are form-urlencoded before base64.
  const unescape = (s: string): string => decodeURIComponent(s.replace(/\+/g, ' '))
  return { clientId: unescape(decoded.slice(0, colon)), clientSecret: unescape(decoded.slice(colon + 1)) }
}

export async function startFakeTokenEndpoint(
  script: TokenScript,
  options: { path?: string } = {},
): Promise<FakeTokenEndpoint> {
  const tokenPath = options.path ?? '/token'
  const requests: RecordedTokenRequest[] = []
  const tokenRequests: RecordedTokenRequest[] = []
  const sockets = new Set<net.Socket>()
  let baseUrl = ''

  const nextStep = (request: RecordedTokenRequest, index: number): TokenStep => {
    if (typeof script === 'function') return normalize(script(request, index))
    if (Array.isArray(script)) {
      const step = script[index]
      if (step !== undefined) return normalize(step)
      const body = 'fake token endpoint: script exhausted'
      return { type: 'raw', status: 500, headers: { 'content-type': 'text/plain' }, body }
    }
    return normalize(script)
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const contentType = (req.headers['content-type'] ?? '').toLowerCase()
      const isForm = contentType.startsWith('application/x-www-form-urlencoded')
      const recorded: RecordedTokenRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body,
        form: isForm ? Object.fromEntries(new URLSearchParams(body)) : {},
      }
      const basicAuth = parseBasic(req.headers.authorization)
      if (basicAuth) recorded.basicAuth = basicAuth
      requests.push(recorded)

      const pathname = (req.url ?? '').split('?')[0]
      if (req.method === 'POST' && pathname === tokenPath) {
        const index = tokenRequests.length
        tokenRequests.push(recorded)
        const result = answer(nextStep(recorded, index), baseUrl)
        if (result === 'hang') return
        res.writeHead(result.status, result.headers).end(result.body)
        return
      }
      if (pathname === '/elsewhere') {
        // Where the default redirect points: it would hand out a token, so a client that follows
        // the redirect is caught by `requests` (and by the token it gets).
        const followed = { type: 'success', body: { access_token: 'token-from-followed-redirect' } } as const
        const result = answer(followed, baseUrl)
        if (result !== 'hang') res.writeHead(result.status, result.headers).end(result.body)
        return
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
    })
  })
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as net.AddressInfo).port
  baseUrl = `http://127.0.0.1:${port}`
  return {
    url: `${baseUrl}${tokenPath}`,
    port,
    requests,
    tokenRequests: () => tokenRequests.slice(),
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
