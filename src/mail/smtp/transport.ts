import net from 'node:net'
import nodemailer from 'nodemailer'
import type { Transporter } from 'nodemailer'
import type { MailLogin, MailServerAddress } from '../imap/connect.ts'

/**
 * A nodemailer SMTP transport with XOAUTH2 (or a password). The access token is passed in, fresh
 * per connection; nodemailer's own token refresh is not used, because the credential store is the
 * one place that refreshes (single flight, rotation stored atomically). Wire logging stays off: the
 * AUTH line carries the token.
 */
export function createSmtpTransport(server: MailServerAddress, login: MailLogin, opts: { pool?: boolean } = {}): Transporter {
  return nodemailer.createTransport({
    host: server.host,
    port: server.port,
    secure: server.security === 'tls',
    requireTLS: server.security === 'starttls',
    ignoreTLS: server.security === 'none',
    auth:
      'accessToken' in login
        ? { type: 'OAuth2', user: login.user, accessToken: login.accessToken }
        : { type: 'login', user: login.user, pass: login.password },
    // SNI takes host names only (RFC 6066 section 3); Node verifies the certificate against the host either way.
    tls: net.isIP(server.host) ? {} : { servername: server.host },
    pool: opts.pool ?? false,
    maxConnections: 3,
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    socketTimeout: 60_000,
    logger: false,
    debug: false,
  } as any)
}
