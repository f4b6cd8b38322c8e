import { connectImap } from '../mail/imap/connect.ts'
import type { MailLogin, MailServerAddress } from '../mail/imap/connect.ts'
import { Pop3Client } from '../mail/pop3/index.ts'
import { createSmtpTransport } from '../mail/smtp/transport.ts'
import { mailConnectionError } from '../mail/connection-errors.ts'
import { AppError } from '../shared/errors.ts'

export interface ConnectionTestResult {
  ok: boolean
  /** What the admin reads: what worked, or what is wrong and what to do. */
  message: string
  code?: string
  transient?: boolean
}

/**
 * Signs in to the mail server the way the workers will: IMAP login and opening the folder,
 * POP3 login and STAT, SMTP EHLO and AUTH.
 */
export async function testMailConnection(
  server: MailServerAddress & { protocol: 'imap' | 'pop3' | 'smtp'; folder: string; provider: string },
  login: MailLogin,
): Promise<ConnectionTestResult> {
  try {
    if (server.protocol === 'imap') {
      const client = await connectImap(server, login, { disableAutoIdle: true })
      try {
        const box = await client.mailboxOpen(server.folder, { readOnly: true }).catch((err: any) => {
          throw new AppError('imap_folder_missing', `Signed in, but the folder "${server.folder}" cannot be opened (${err?.responseText ?? err?.message}). Check the Folder field.`, {
            cause: err,
          })
        })
        return { ok: true, message: `Connected: signed in to ${server.host} and opened ${server.folder} (${box.exists} messages).` }
      } finally {
        await client.logout().catch(() => client.close())
      }
    }
    if (server.protocol === 'pop3') {
      const pop = await Pop3Client.connect({ host: server.host, port: server.port, security: server.security })
      try {
        if ('accessToken' in login) {
          // Microsoft wants the two-step form of AUTH XOAUTH2; Gmail and Dovecot take the initial response.
          const style = server.provider === 'microsoft365' || server.provider === 'outlook_legacy' ? 'two-step' : 'initial-response'
          await pop.authenticateXOAuth2(login.user, login.accessToken, { style })
        } else {
          await pop.login(login.user, login.password)
        }
        const stat = await pop.stat()
        return { ok: true, message: `Connected: signed in to ${server.host} (${(stat as any).count ?? (stat as any).messages ?? 0} messages waiting).` }
      } finally {
        await pop.quit().catch(() => pop.close())
      }
    }
    const transport = createSmtpTransport(server, login)
    try {
      await transport.verify()
      return { ok: true, message: `Connected: ${server.host} accepted the sign-in for sending.` }
    } finally {
      transport.close()
    }
  } catch (err) {
    const final = mailConnectionError(err, server.protocol, server)
    return { ok: false, message: final.message, code: final.code, transient: final.transient }
  }
}
