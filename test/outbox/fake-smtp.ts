/**
 * An SMTP server (smtp-server) that answers what the real stand-in never does: Microsoft's
 * `535 5.7.139` for a tenant without SMTP AUTH, a 550 for an unknown recipient, a 451 after the
 * data, or a connection that dies after the final dot (the reply lost). Plain text on 127.0.0.1.
 */
import type { AddressInfo, Socket } from 'node:net'
import { SMTPServer } from 'smtp-server'

export type FakeSmtpBehaviour =
  | 'accept'
  | 'auth-disabled-5.7.139'
  | 'reject-recipient-550'
  | 'temporary-451-after-data'
  | 'drop-after-data'

export interface FakeSmtp {
  port: number
  behaviour: FakeSmtpBehaviour
  /** Messages whose data arrived completely (also those whose reply was then lost). */
  received: Array<{ to: string[]; raw: Buffer; replied: boolean }>
  authAttempts: number
  close(): Promise<void>
}

const smtpError = (code: number, message: string) => Object.assign(new Error(message), { responseCode: code })

export async function startFakeSmtp(): Promise<FakeSmtp> {
  const sockets = new Set<Socket>()
  const state: FakeSmtp = {
    port: 0,
    behaviour: 'accept',
    received: [],
    authAttempts: 0,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authMethods: ['XOAUTH2'],
    logger: false,
    disableReverseLookup: true,
    closeTimeout: 100,
    onAuth(auth, _session, callback) {
      state.authAttempts++
      if (state.behaviour === 'auth-disabled-5.7.139') {
        callback(smtpError(535, '5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.'))
        return
      }
      callback(null, { user: auth.username })
    },
    onRcptTo(address, _session, callback) {
      if (state.behaviour === 'reject-recipient-550') callback(smtpError(550, `5.1.1 <${address.address}>: Recipient address rejected: User unknown`))
      else callback()
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        const entry = { to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks), replied: false }
        state.received.push(entry)
        if (state.behaviour === 'drop-after-data') {
          // The server got the whole message, then the connection dies before its "250".
          for (const s of sockets) s.destroy()
          return
        }
        if (state.behaviour === 'temporary-451-after-data') {
          callback(smtpError(451, '4.3.0 Temporary local problem, try again later'))
          return
        }
        entry.replied = true
        callback()
      })
    },
  })
  server.on('error', () => {})
  server.server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  state.port = (server.server.address() as AddressInfo).port
  return state
}
