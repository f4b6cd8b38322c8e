/**
 * An SMTP server (the `smtp-server` package) on 127.0.0.1 that stands in for smtp.gmail.com /
 * smtp.office365.com: AUTH XOAUTH2 only, checked by introspection at the stand-in OAuth server;
 * STARTTLS with the test PKI (or implicit TLS with `secure: true`); every accepted message is
 * recorded for assertions.
 */
import { EventEmitter } from 'node:events'
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { SMTPServer } from 'smtp-server'
import type { SMTPServerAuthentication, SMTPServerSession } from 'smtp-server'
import { ensureTestPki } from './pki.ts'
import { GOOGLE_MAIL_SCOPE } from './oauth-server.ts'

export interface StartSmtpSinkOptions {
  introspectionUrl: string
  clientId: string
  clientSecret: string
  /** Implicit TLS (port 465 style). Default false: plain connection, STARTTLS offered (port 587 style). */
  secure?: boolean
}

export interface ReceivedMessage {
  /** MAIL FROM address ('' for the null sender). */
  from: string
  /** RCPT TO addresses. */
  to: string[]
  raw: Buffer
  /** The account the XOAUTH2 token belongs to. */
  authUser: string
}

export interface SmtpSink {
  host: '127.0.0.1'
  port: number
  secure: boolean
  messages: ReceivedMessage[]
  /** The first message (received or to come) matching the predicate; rejects after timeoutMs. */
  waitForMessage(
    predicate?: (message: ReceivedMessage) => boolean,
    timeoutMs?: number,
  ): Promise<ReceivedMessage>
  /** While down: new connections get `421` and are closed; open sessions get `421` to MAIL FROM. */
  setDown(down: boolean): void
  stop(): Promise<void>
}

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code })
}

interface Introspection {
  active?: boolean
  email?: string
  sub?: string
}

export async function startSmtpSink(options: StartSmtpSinkOptions): Promise<SmtpSink> {
  const pki = ensureTestPki()
  const messages: ReceivedMessage[] = []
  const events = new EventEmitter()
  let down = false
  const basic = `Basic ${Buffer.from(
    `${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`,
  ).toString('base64')}`

  const introspect = async (token: string): Promise<Introspection> => {
    const response = await fetch(options.introspectionUrl, {
      method: 'POST',
      headers: { authorization: basic },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
    })
    if (!response.ok) throw new Error(`introspection answered HTTP ${response.status}`)
    return (await response.json()) as Introspection
  }

  const onAuth = (
    auth: SMTPServerAuthentication,
    _session: SMTPServerSession,
    callback: (err: Error | null | undefined, response?: { user?: string; data?: object }) => void,
  ): void => {
    if (auth.method !== 'XOAUTH2' || !auth.accessToken) {
      callback(smtpError(504, '5.5.4 Unrecognized authentication type'))
      return
    }
    introspect(auth.accessToken).then(
      (result) => {
        const account = result.email ?? result.sub
        if (result.active === true && account && account.toLowerCase() === auth.username?.toLowerCase()) {
          callback(null, { user: account })
        } else {
          // XOAUTH2 failure: `334 <base64 JSON>`, the client answers an empty line, then 535
          // (https://developers.google.com/gmail/imap/xoauth2-protocol#error_response_2).
          callback(null, { data: { status: '401', schemes: 'bearer', scope: GOOGLE_MAIL_SCOPE } })
        }
      },
      // The token server is unreachable: a temporary failure, as a real server would answer.
      () => callback(smtpError(454, '4.7.0 Temporary authentication failure')),
    )
  }

  const server = new SMTPServer({
    secure: options.secure ?? false,
    key: readFileSync(pki.keyPath),
    cert: readFileSync(pki.certPath),
    name: 'localhost',
    authMethods: ['XOAUTH2'],
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 200,
    onAuth,
    onConnect(_session, callback) {
      callback(down ? smtpError(421, '4.3.2 Service not available, closing transmission channel') : undefined)
    },
    onMailFrom(_address, _session, callback) {
      callback(down ? smtpError(421, '4.3.2 Service not available, closing transmission channel') : undefined)
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('error', (err) => callback(err))
      stream.on('end', () => {
        const envelope = session.envelope
        const message: ReceivedMessage = {
          from: envelope.mailFrom ? envelope.mailFrom.address : '',
          to: envelope.rcptTo.map((rcpt) => rcpt.address),
          raw: Buffer.concat(chunks),
          authUser: String(session.user ?? ''),
        }
        messages.push(message)
        events.emit('message', message)
        callback()
      })
    },
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  // Client errors (a test dropping a connection) must not crash the test process.
  server.on('error', () => {})
  const { port } = server.server.address() as AddressInfo

  const waitForMessage = (
    predicate: (message: ReceivedMessage) => boolean = () => true,
    timeoutMs = 5_000,
  ): Promise<ReceivedMessage> => {
    const found = messages.find(predicate)
    if (found) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const onMessage = (message: ReceivedMessage): void => {
        if (!predicate(message)) return
        clearTimeout(timer)
        events.off('message', onMessage)
        resolve(message)
      }
      const timer = setTimeout(() => {
        events.off('message', onMessage)
        reject(new Error(`no matching message within ${timeoutMs} ms (${messages.length} received)`))
      }, timeoutMs)
      events.on('message', onMessage)
    })
  }

  return {
    host: '127.0.0.1',
    port,
    secure: options.secure ?? false,
    messages,
    waitForMessage,
    setDown: (value) => {
      down = value
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
