/**
 * The HTTP transport for token and revocation requests, plugged into oauth4webapi through its
 * `customFetch` option. It differs from the global `fetch` where the client secret is at stake:
 *
 * - the endpoint policy runs before the request, and again inside the socket's DNS `lookup`, so
 *   the connection goes to an address that was checked (a DNS answer that changes between the
 *   check and the connection, "DNS rebinding", cannot send the secret to an internal host);
 * - redirects are refused, never followed: a 30x would carry the client secret and the grant to
 *   a URL the admin never typed (RFC 9700 section 4.11);
 * - one deadline covers connecting, sending and reading the body; the body is capped.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.11
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns'
import http from 'node:http'
import https from 'node:https'
import type { LookupFunction } from 'node:net'
import { AppError } from '../shared/errors.ts'
import { assertResolvedAddressesAllowed, checkEndpointUrl, type EndpointPurpose } from './endpoint-policy.ts'
import { OAUTH_ERROR_CODES, unavailable, type OAuthOperation } from './oauth-errors.ts'

export interface GuardedFetchOptions {
  /** Deadline for the whole exchange (connect, request, response body). */
  timeoutMs: number
  allowedPrivateHosts: readonly string[]
  purpose: EndpointPurpose
  operation: OAuthOperation
  /** Token responses are small; a larger body is refused. Default 1 MiB. */
  maxResponseBytes?: number
}

/** The subset of fetch's `init` that oauth4webapi passes to a custom fetch. */
export interface GuardedFetchInit {
  method: string
  headers: Record<string, string>
  body?: URLSearchParams | string | null
  redirect?: 'manual'
  signal?: AbortSignal
}

export type GuardedFetch = (url: string, init: GuardedFetchInit) => Promise<Response>

const DEFAULT_MAX_BYTES = 1024 * 1024

export function createGuardedFetch(options: GuardedFetchOptions): GuardedFetch {
  const ctx = { operation: options.operation }
  const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_BYTES
  const lookup = guardedLookup(options.allowedPrivateHosts, options.purpose)

  return async (url, init) => {
    const target = await checkEndpointUrl(url, {
      allowedPrivateHosts: options.allowedPrivateHosts,
      purpose: options.purpose,
    })
    const deadline = AbortSignal.timeout(options.timeoutMs)
    const signal = init.signal ? AbortSignal.any([deadline, init.signal]) : deadline
    const body = init.body === undefined || init.body === null ? undefined : Buffer.from(init.body.toString())
    const headers: Record<string, string> = { ...init.headers }
    if (body) headers['content-length'] = String(body.length)

    return new Promise<Response>((resolve, reject) => {
      let settled = false
      const settle = (fn: () => void) => {
        if (settled) return
        settled = true
        signal.removeEventListener('abort', onAbort)
        fn()
      }
      const fail = (err: unknown) => settle(() => reject(err))
      const onAbort = () => {
        const reason = deadline.aborted ? 'timeout' : 'aborted'
        fail(unavailable(ctx, { reason, host: target.hostname }))
        request.destroy()
      }

      const transport = target.protocol === 'https:' ? https : http
      // agent: false gives every request its own connection, so the guarded lookup runs for
      // each one; token requests are rare (about one per credential per hour).
      const request = transport.request(target, { method: init.method, headers, lookup, agent: false })
      signal.addEventListener('abort', onAbort)
      if (signal.aborted) return onAbort()

      request.on('error', (err) => {
        if (err instanceof AppError) return fail(err)
        const code = (err as NodeJS.ErrnoException).code
        fail(unavailable(ctx, { reason: code ?? err.name, host: target.hostname }, err))
      })
      request.on('response', (response) => {
        const status = response.statusCode ?? 0
        if (status >= 300 && status < 400) {
          const location = response.headers.location
          let locationHost: string | undefined
          try {
            locationHost = location ? new URL(location, target).host : undefined
          } catch {
            locationHost = undefined
          }
          response.resume()
          request.destroy()
          return fail(
            new AppError(
              OAUTH_ERROR_CODES.endpointRedirect,
              `The ${options.purpose} endpoint answered with a redirect (HTTP ${status}); deskmail does not follow redirects from OAuth endpoints`,
              {
                details: {
                  operation: options.operation,
                  purpose: options.purpose,
                  http_status: status,
                  host: target.hostname,
                  location_host: locationHost,
                },
              },
            ),
          )
        }
        const chunks: Buffer[] = []
        let size = 0
        response.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size > maxBytes) {
            request.destroy()
            fail(
              new AppError(
                OAUTH_ERROR_CODES.invalidResponse,
                `The ${options.purpose} endpoint sent more than ${maxBytes} bytes`,
                { transient: true, details: { operation: options.operation, http_status: status } },
              ),
            )
            return
          }
          chunks.push(chunk)
        })
        response.on('error', (err) => {
          fail(unavailable(ctx, { reason: (err as NodeJS.ErrnoException).code ?? err.name }, err))
        })
        response.on('aborted', () => fail(unavailable(ctx, { reason: 'ECONNRESET', host: target.hostname })))
        response.on('end', () => {
          const responseHeaders = new Headers()
          for (let i = 0; i + 1 < response.rawHeaders.length; i += 2) {
            responseHeaders.append(response.rawHeaders[i]!, response.rawHeaders[i + 1]!)
          }
          const nullBody = status === 204 || status === 205 || status === 304
          settle(() => {
            try {
              resolve(
                new Response(nullBody ? null : Buffer.concat(chunks), {
                  status,
                  statusText: response.statusMessage ?? '',
                  headers: responseHeaders,
                }),
              )
            } catch (err) {
              // A status the Response constructor refuses (outside 200-599).
              reject(unavailable(ctx, { reason: `invalid HTTP status ${status}` }, err))
            }
          })
        })
      })
      request.end(body)
    })
  }
}

/**
 * A `net` lookup that refuses addresses outside the policy at connect time. Node calls it for
 * host names only (an IP literal was already judged by `checkEndpointUrl`); with
 * `autoSelectFamily` it asks for `all` addresses.
 */
function guardedLookup(allowedPrivateHosts: readonly string[], purpose: EndpointPurpose): LookupFunction {
  return (hostname: string, options: LookupOptions, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0)
      try {
        assertResolvedAddressesAllowed(hostname, addresses, { allowedPrivateHosts, purpose })
      } catch (refused) {
        return callback(refused as NodeJS.ErrnoException, '', 0)
      }
      if (options.all) return (callback as (e: null, a: LookupAddress[]) => void)(null, addresses)
      const first = addresses[0]!
      callback(null, first.address, first.family)
    })
  }
}
