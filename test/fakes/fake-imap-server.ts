/**
 * An in-process IMAP4rev1 server that speaks just enough for imapflow to connect, and answers
 * AUTHENTICATE the way Gmail and Microsoft do when something is wrong (PROVIDERS.md):
 * - `{ alert }`: `NO [ALERT] <alert>` (Gmail, e.g. GMAIL_IMAP_DISABLED_ALERT);
 * - `'too-many'`: `NO [ALERT] Too many simultaneous connections. (Failure)` (Gmail);
 * - `'ms-not-connected'`: `OK` to AUTHENTICATE, then `BAD User is authenticated but not connected.`
 *   to every later command but LOGOUT (Microsoft; imapflow notices it at NAMESPACE);
 * - `'rejected'`: the `+ <b64 JSON>` error challenge, then, after the client's answer,
 *   `NO AUTHENTICATE failed.` (Microsoft's text; Dovecot behaves the same with its own text);
 * - `{ respond }`: any tagged answer, e.g. `'NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)'`.
 *
 * Commands: CAPABILITY, ID, AUTHENTICATE (XOAUTH2, OAUTHBEARER; SASL-IR or not), NAMESPACE, LIST,
 * LSUB, SELECT/EXAMINE and STATUS (an empty INBOX), NOOP, IDLE, LOGOUT. Anything else gets BAD.
 *
 * ```ts
 * const imap = await startFakeImapServer({ onAuthenticate: { alert: GMAIL_IMAP_DISABLED_ALERT } })
 * after(() => imap.close())
 * const client = new ImapFlow({ host: imap.host, port: imap.port, secure: false, auth: { user, accessToken },
 *   logger: false })
 * await assert.rejects(client.connect())  // err.response holds '[ALERT] Your account is not enabled...'
 * ```
 */
import { readFileSync } from 'node:fs'
import net from 'node:net'
import tls from 'node:tls'
import { ensureTestPki } from '../harness/pki.ts'

/** Gmail's text when IMAP is off in the account's settings (PROVIDERS.md, Google). */
export const GMAIL_IMAP_DISABLED_ALERT =
  'Your account is not enabled for IMAP use. Please visit your Gmail settings page and enable your account for IMAP access. (Failure)'
/** Gmail's text past its per-account connection limit (PROVIDERS.md, Google). */
export const GMAIL_TOO_MANY_CONNECTIONS_ALERT = 'Too many simultaneous connections. (Failure)'
/** Microsoft's answer to the first command after an AUTHENTICATE it accepted for the wrong account (PROVIDERS.md). */
export const MS_NOT_CONNECTED_TEXT = 'User is authenticated but not connected.'
/** Microsoft's tagged answer to a refused token (PROVIDERS.md). */
export const MS_AUTHENTICATE_FAILED_TEXT = 'AUTHENTICATE failed.'

export type FakeImapAuthOutcome =
  | 'ok'
  | 'too-many'
  | 'ms-not-connected'
  | 'rejected'
  | { alert: string }
  | { respond: string }

export interface FakeImapAuthAttempt {
  mechanism: 'XOAUTH2' | 'OAUTHBEARER'
  user: string
  /** The bearer token sent (a fake, kept for assertions). */
  token: string
  /** OAUTHBEARER only: the host and port the client put in its response (RFC 7628 section 3.1). */
  host?: string
  port?: string
}

export interface FakeImapOptions {
  /** What AUTHENTICATE does; a function decides per attempt (index counts from 0 across sessions). */
  onAuthenticate: FakeImapAuthOutcome | ((attempt: FakeImapAuthAttempt, index: number) => FakeImapAuthOutcome)
  /** Implicit TLS with the harness PKI certificate (trusted via NODE_EXTRA_CA_CERTS or `tls: { ca }`). */
  tls?: boolean
  /** SASL mechanisms offered. Default XOAUTH2 only (imapflow prefers OAUTHBEARER when offered). */
  mechanisms?: Array<'XOAUTH2' | 'OAUTHBEARER'>
  /** Advertise SASL-IR (RFC 4959). Default true, as Gmail and Microsoft do. */
  saslIr?: boolean
  /** The JSON of the error challenge for `'rejected'`. Default Dovecot's `{"status":"401",...}`. */
  errorChallenge?: Record<string, unknown>
}

export interface FakeImapServer {
  host: '127.0.0.1'
  port: number
  secure: boolean
  /** PEM of the CA that signed the certificate, for imapflow's `tls: { ca }`. */
  ca: string
  /** Every command line received (tag included; SASL responses and literals included as sent). */
  commands: string[]
  authAttempts: FakeImapAuthAttempt[]
  connections: number
  close(): Promise<void>
}

const CRLF = '\r\n'

function decodeSasl(mechanism: 'XOAUTH2' | 'OAUTHBEARER', b64: string): FakeImapAuthAttempt {
  const text = Buffer.from(b64, 'base64').toString('utf8')
  if (mechanism === 'XOAUTH2') {
    const match = /^user=([^\x01]*)\x01auth=Bearer ([^\x01]*)\x01\x01$/.exec(text)
    return { mechanism, user: match?.[1] ?? '', token: match?.[2] ?? '' }
  }
  // RFC 7628 section 3.1: gs2-header "," then kvpairs separated by %x01, ending with %x01%x01.
  const [gs2 = '', ...pairs] = text.split('\x01')
  const user = (/(?:^|,)a=([^,]*)/.exec(gs2)?.[1] ?? '').replace(/=2C/g, ',').replace(/=3D/g, '=')
  const field = (name: string): string | undefined =>
    pairs.find((p) => p.startsWith(`${name}=`))?.slice(name.length + 1)
  return {
    mechanism,
    user,
    token: (field('auth') ?? '').replace(/^Bearer /, ''),
    host: field('host'),
    port: field('port'),
  }
}

type Session = {
  socket: net.Socket
  authenticated: boolean
  notConnected: boolean
  /** Waiting for a SASL line (`response`: the client response; `abort`: the answer to an error challenge). */
  sasl?: { tag: string; mechanism: 'XOAUTH2' | 'OAUTHBEARER'; step: 'response' | 'abort' }
  idleTag?: string
}

export async function startFakeImapServer(options: FakeImapOptions): Promise<FakeImapServer> {
  const pki = ensureTestPki()
  const mechanisms = options.mechanisms ?? ['XOAUTH2']
  const capabilities = [
    'IMAP4rev1',
    'ID',
    'IDLE',
    'NAMESPACE',
    ...(options.saslIr === false ? [] : ['SASL-IR']),
    ...mechanisms.map((m) => `AUTH=${m}`),
  ].join(' ')
  const errorChallenge = options.errorChallenge ?? { status: '401', schemes: 'bearer', scope: 'mail' }
  const sockets = new Set<net.Socket>()
  let attemptIndex = 0

  const server: FakeImapServer = {
    host: '127.0.0.1',
    port: 0,
    secure: options.tls === true,
    ca: readFileSync(pki.caCertPath, 'utf8'),
    commands: [],
    authAttempts: [],
    connections: 0,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => listener.close(() => resolve()))
    },
  }

  const write = (session: Session, ...lines: string[]): void => {
    if (!session.socket.destroyed) session.socket.write(lines.map((l) => l + CRLF).join(''))
  }

  const authenticate = (session: Session, tag: string, attempt: FakeImapAuthAttempt): void => {
    server.authAttempts.push(attempt)
    const decide = options.onAuthenticate
    const outcome = typeof decide === 'function' ? decide(attempt, attemptIndex++) : decide
    session.sasl = undefined
    if (outcome === 'ok') {
      session.authenticated = true
      return write(session, `${tag} OK ${attempt.user} authenticated (Success)`)
    }
    if (outcome === 'ms-not-connected') {
      // Microsoft accepts the SASL exchange, then refuses every command: imapflow reports it as an
      // authentication failure when its NAMESPACE gets this BAD.
      session.authenticated = true
      session.notConnected = true
      return write(session, `${tag} OK AUTHENTICATE completed.`)
    }
    if (outcome === 'too-many') return write(session, `${tag} NO [ALERT] ${GMAIL_TOO_MANY_CONNECTIONS_ALERT}`)
    if (outcome === 'rejected') {
      session.sasl = { tag, mechanism: attempt.mechanism, step: 'abort' }
      return write(session, `+ ${Buffer.from(JSON.stringify(errorChallenge)).toString('base64')}`)
    }
    if ('alert' in outcome) return write(session, `${tag} NO [ALERT] ${outcome.alert}`)
    return write(session, `${tag} ${outcome.respond}`)
  }

  const handleCommand = (session: Session, line: string): void => {
    server.commands.push(line)
    if (session.sasl) {
      const { tag, mechanism, step } = session.sasl
      if (line === '*') {
        session.sasl = undefined
        return write(session, `${tag} BAD AUTHENTICATE cancelled.`)
      }
      if (step === 'response') return authenticate(session, tag, decodeSasl(mechanism, line))
      // The client answered the error challenge (empty line for XOAUTH2, AQ== for OAUTHBEARER).
      session.sasl = undefined
      return write(session, `${tag} NO ${MS_AUTHENTICATE_FAILED_TEXT}`)
    }
    if (session.idleTag !== undefined) {
      if (line.toUpperCase() === 'DONE') {
        const tag = session.idleTag
        session.idleTag = undefined
        write(session, `${tag} OK IDLE terminated.`)
      }
      return
    }
    const match = /^(\S+) (\S+)(?: (.*))?$/.exec(line)
    if (!match) return write(session, `* BAD Could not parse command.`)
    const [, tag, rawCommand, rest = ''] = match
    const command = rawCommand.toUpperCase()

    if (command === 'LOGOUT') {
      write(session, '* BYE Logging out.', `${tag} OK LOGOUT completed.`)
      session.socket.end()
      return
    }
    if (session.notConnected) return write(session, `${tag} BAD ${MS_NOT_CONNECTED_TEXT}`)

    switch (command) {
      case 'CAPABILITY':
        return write(session, `* CAPABILITY ${capabilities}`, `${tag} OK CAPABILITY completed.`)
      case 'NOOP':
        return write(session, `${tag} OK NOOP completed.`)
      case 'ID':
        return write(session, '* ID ("name" "deskmail-fake-imap")', `${tag} OK ID completed.`)
      case 'AUTHENTICATE': {
        if (session.authenticated) return write(session, `${tag} BAD Already authenticated.`)
        const [mech = '', initial] = rest.split(' ')
        const mechanism = mech.toUpperCase()
        if (mechanism !== 'XOAUTH2' && mechanism !== 'OAUTHBEARER') {
          return write(session, `${tag} NO Unsupported authentication mechanism.`)
        }
        if (!mechanisms.includes(mechanism)) {
          return write(session, `${tag} NO Unsupported authentication mechanism.`)
        }
        if (initial !== undefined) return authenticate(session, tag, decodeSasl(mechanism, initial))
        // Without SASL-IR (RFC 4959): an empty challenge asks for the client response.
        session.sasl = { tag, mechanism, step: 'response' }
        return write(session, '+ ')
      }
      case 'LOGIN':
        return write(session, `${tag} NO [AUTHENTICATIONFAILED] Use AUTHENTICATE.`)
    }

    if (!session.authenticated) return write(session, `${tag} BAD Command not valid before authentication.`)
    switch (command) {
      case 'NAMESPACE':
        return write(session, '* NAMESPACE (("" "/")) NIL NIL', `${tag} OK NAMESPACE completed.`)
      case 'LIST':
      case 'LSUB':
        if (/""\s*""$/.test(rest)) {
          return write(session, `* ${command} (\\Noselect) "/" ""`, `${tag} OK ${command} completed.`)
        }
        return write(session, `* ${command} (\\HasNoChildren) "/" INBOX`, `${tag} OK ${command} completed.`)
      case 'SELECT':
      case 'EXAMINE':
        return write(
          session,
          '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)',
          '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.',
          '* 0 EXISTS',
          '* 0 RECENT',
          '* OK [UIDVALIDITY 1] UIDs valid.',
          '* OK [UIDNEXT 1] Predicted next UID.',
          `${tag} OK [${command === 'SELECT' ? 'READ-WRITE' : 'READ-ONLY'}] ${command} completed.`,
        )
      case 'STATUS':
        return write(
          session,
          '* STATUS INBOX (MESSAGES 0 RECENT 0 UIDNEXT 1 UIDVALIDITY 1 UNSEEN 0)',
          `${tag} OK STATUS completed.`,
        )
      case 'IDLE':
        session.idleTag = tag
        return write(session, '+ idling')
      default:
        return write(session, `${tag} BAD Command not supported by the fake server.`)
    }
  }

  const onConnection = (socket: net.Socket): void => {
    server.connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    const session: Session = { socket, authenticated: false, notConnected: false }
    let pending = Buffer.alloc(0)
    let command = ''
    let literalAcknowledged = false
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk])
      for (;;) {
        const lf = pending.indexOf('\n')
        if (lf < 0) return
        const line = pending.toString('utf8', 0, lf).replace(/\r$/, '')
        // A literal {n} or {n+} (RFC 3501 section 4.3 / RFC 7888): its n bytes follow the line end.
        const literal = /\{(\d+)(\+?)\}$/.exec(line)
        if (literal && !session.sasl) {
          const size = Number(literal[1])
          if (pending.length < lf + 1 + size) {
            // A synchronising literal waits for the server's go-ahead; a non-synchronising one does not.
            if (!literal[2] && !literalAcknowledged) write(session, '+ Ready for literal data.')
            literalAcknowledged = true
            return
          }
          literalAcknowledged = false
          command += line + pending.toString('utf8', lf + 1, lf + 1 + size)
          pending = pending.subarray(lf + 1 + size)
          continue
        }
        pending = pending.subarray(lf + 1)
        handleCommand(session, command + line)
        command = ''
      }
    })
    write(session, `* OK [CAPABILITY ${capabilities}] Fake IMAP ready.`)
  }

  const listener = options.tls
    ? tls.createServer({ key: readFileSync(pki.keyPath), cert: readFileSync(pki.certPath) }, onConnection)
    : net.createServer(onConnection)
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject)
    listener.listen(0, '127.0.0.1', () => resolve())
  })
  server.port = (listener.address() as net.AddressInfo).port
  return server
}
