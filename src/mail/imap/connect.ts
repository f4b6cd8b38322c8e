import net from 'node:net'
import { ImapFlow } from 'imapflow'
import type { ImapFlowOptions } from 'imapflow'
import { mailConnectionError } from '../connection-errors.ts'

export interface MailServerAddress {
  host: string
  port: number
  security: 'tls' | 'starttls' | 'none'
}

export type MailLogin = { user: string; accessToken: string } | { user: string; password: string }

/**
 * Opens an authenticated IMAP connection with imapflow. A fresh access token is passed on every
 * (re)connect: a long connection can outlive its token (PROVIDERS.md, SASL). imapflow's wire
 * logger stays off, because the AUTHENTICATE line carries the token.
 */
export async function connectImap(
  server: MailServerAddress,
  login: MailLogin,
  options: Partial<Pick<ImapFlowOptions, 'disableAutoIdle' | 'autoIdleDelay' | 'maxIdleTime' | 'socketTimeout' | 'qresync'>> = {},
): Promise<ImapFlow> {
  const client = new ImapFlow({
    host: server.host,
    port: server.port,
    secure: server.security === 'tls',
    // `starttls` must never fall back to plain text; `none` is for loopback test servers only.
    doSTARTTLS: server.security === 'starttls' ? true : server.security === 'none' ? false : undefined,
    // SNI takes host names only (RFC 6066 section 3); the certificate is verified against the host either way.
    servername: net.isIP(server.host) ? undefined : server.host,
    auth: 'accessToken' in login ? { user: login.user, accessToken: login.accessToken } : { user: login.user, pass: login.password },
    logger: false,
    emitLogs: false,
    clientInfo: { name: 'deskmail', vendor: 'deskmail' },
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    socketTimeout: options.socketTimeout ?? 5 * 60_000,
    ...options,
  })
  // An 'error' event without a listener would crash the process; the caller sees the failure
  // through the rejected promise or the 'close' event.
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (err) {
    client.close()
    throw mailConnectionError(err, 'imap', server)
  }
  return client
}
