/**
 * An in-process POP3 server for the faults a real server will not produce on demand: Gmail-style
 * vs Microsoft-style AUTH XOAUTH2, the `+ <b64 JSON>` error challenge, slow and hung answers, an
 * answer cut off half-way, a refusing greeting, data injected after STLS. Speaks RFC 1939 (USER,
 * PASS, STAT, LIST, UIDL, RETR, DELE, RSET, NOOP, QUIT), RFC 2449 CAPA, RFC 2595 STLS and RFC 5034
 * AUTH XOAUTH2 on 127.0.0.1, port 0.
 *
 * ```ts
 * const pop = await startFakePop3Server({ messages: ['Subject: a\r\n\r\nhello\r\n'], authStyle: 'microsoft' })
 * after(() => pop.close())
 * const client = await Pop3Client.connect({ host: pop.host, port: pop.port, security: 'none' })
 * await client.authenticateXOAuth2('user@example.com', FAKE_VALID_TOKEN, { style: 'two-step' })
 * ```
 *
 * With `tls` or `stls` the server uses the harness PKI certificate (SAN 127.0.0.1, localhost):
 * clients trust it through NODE_EXTRA_CA_CERTS (set by test/run.sh) or `ca: server.ca`.
 */
import { readFileSync } from 'node:fs'
import net from 'node:net'
import tls from 'node:tls'
import { ensureTestPki } from '../harness/pki.ts'

/** The token the fake accepts unless `accept` says otherwise. */
export const FAKE_VALID_TOKEN = 'ya29.fake-valid-access-token'

/**
 * Google's example error challenge for XOAUTH2 (its XOAUTH2 protocol document), decoded.
 * @see https://developers.google.com/workspace/gmail/imap/xoauth2-protocol#error_response
 */
export const GMAIL_ERROR_CHALLENGE = {
  status: '401',
  schemes: 'bearer mac',
  scope: 'https://mail.google.com/',
}
/** What Dovecot sends (HARNESS.md); used for the Microsoft style too, whose exact JSON is not documented. */
export const BEARER_ERROR_CHALLENGE = { status: '401', schemes: 'bearer', scope: 'mail' }

export interface FakePop3Message {
  /** UIDL value; default `uid-<n>` with n the 1-based position in `messages`. */
  uid?: string
  body: string | Buffer
}

/**
 * - `gmail`: `AUTH XOAUTH2 <b64>` accepted (and the two-step form too, as RFC 5034 requires).
 * - `microsoft`: only the two-step form: `AUTH XOAUTH2`, `+ `, `<b64>`. This fake answers an initial
 *   response with `-ERR`, so that a client using the wrong style fails visibly (how the real server
 *   fails it is not documented).
 */
export type FakePop3AuthStyle = 'gmail' | 'microsoft'

/**
 * A fault on the answer to one command (keyed by verb, or `GREETING`): answer late, never answer,
 * send only the first bytes of the answer and then stall, or send them and drop the connection.
 */
export type FakePop3Fault =
  | { delayMs: number }
  | { hang: true }
  | { hangAfterBytes: number }
  | { closeAfterBytes: number }

export interface FakePop3Options {
  /** The maildrop. Shared by all sessions; QUIT removes the messages a session marked with DELE. */
  messages?: Array<string | Buffer | FakePop3Message>
  /** Default `gmail`. */
  authStyle?: FakePop3AuthStyle
  /** Which XOAUTH2 logins succeed. Default: the token is FAKE_VALID_TOKEN, any user. */
  accept?: (user: string, token: string) => boolean
  /** The JSON of the `+ <b64>` error challenge on a refused token; `false` answers `-ERR` straight away. */
  errorChallenge?: Record<string, unknown> | false
  /** The `-ERR` line that ends a refused AUTH. Default per style. */
  authErrorLine?: string
  /** USER/PASS accounts (user to password). Default: none, so USER/PASS always fails. */
  users?: Record<string, string>
  /** Implicit TLS (like port 995). */
  tls?: boolean
  /** Offer and honour STLS (RFC 2595) on the plain port. */
  stls?: boolean
  /** Bytes sent in clear right after the `+OK` to STLS, before the handshake (an injection test). */
  stlsInjection?: string
  /** CAPA lines (STLS is added when `stls`); `false`: CAPA answers `-ERR`, like an RFC 1939-only server. */
  capa?: string[] | false
  /** The whole greeting line. Default `+OK <name> ready.` */
  greeting?: string
  /** Faults per verb (`RETR`, `AUTH`, `UIDL`...) or `GREETING`. */
  faults?: Partial<Record<string, FakePop3Fault>>
}

export interface FakePop3AuthAttempt {
  mechanism: 'XOAUTH2' | 'USER'
  style: 'initial-response' | 'two-step' | 'user-pass'
  user: string
  /** The bearer token (XOAUTH2) or the password (USER/PASS): these are fakes, kept for assertions. */
  secret: string
  accepted: boolean
}

export interface FakePop3Server {
  host: '127.0.0.1'
  port: number
  /** PEM of the CA that signed the server certificate (for `ca:` options). */
  ca: string
  /** Every line received from clients, in order, as sent (SASL responses included). */
  lines: string[]
  authAttempts: FakePop3AuthAttempt[]
  /** UIDs removed from the maildrop by a QUIT. */
  expunged: string[]
  /** Sessions accepted so far. */
  connections: number
  /** The maildrop now. */
  mailbox(): Array<{ uid: string; body: Buffer }>
  /** Adds a message, as if delivered; visible to sessions that start afterwards (like a real maildrop lock). */
  deliver(message: string | Buffer | FakePop3Message): void
  close(): Promise<void>
}

type Session = {
  socket: net.Socket
  state: 'authorization' | 'transaction'
  user?: string
  /** Snapshot of the maildrop at login: message numbers stay fixed for the session (RFC 1939 section 5). */
  messages: Array<{ uid: string; body: Buffer }>
  deleted: Set<number>
  /** An AUTH exchange waiting for a line from the client. */
  sasl?: { step: 'response' | 'abort'; style: 'initial-response' | 'two-step' }
  upgrading: boolean
}

const CRLF = '\r\n'

/** RFC 1939 section 3: lines starting with "." get one more; the body ends with CRLF "." CRLF. */
export function dotStuff(body: Buffer): Buffer {
  const parts: Buffer[] = []
  let from = 0
  if (body.length > 0 && body[0] === 0x2e) {
    parts.push(Buffer.from('.'))
  }
  for (let hit = body.indexOf('\n.'); hit >= 0; hit = body.indexOf('\n.', hit + 1)) {
    parts.push(body.subarray(from, hit + 1), Buffer.from('.'))
    from = hit + 1
  }
  parts.push(body.subarray(from))
  const endsWithCrlf = body.length >= 2 && body[body.length - 2] === 0x0d && body[body.length - 1] === 0x0a
  parts.push(Buffer.from(body.length === 0 || endsWithCrlf ? '.\r\n' : '\r\n.\r\n'))
  return Buffer.concat(parts)
}

function toMessage(input: string | Buffer | FakePop3Message, index: number): { uid: string; body: Buffer } {
  const message = typeof input === 'string' || Buffer.isBuffer(input) ? { body: input } : input
  const body = typeof message.body === 'string' ? Buffer.from(message.body, 'utf8') : message.body
  return { uid: message.uid ?? `uid-${index + 1}`, body }
}

function decodeXOAuth2(b64: string): { user: string; token: string } | undefined {
  const text = Buffer.from(b64, 'base64').toString('utf8')
  const match = /^user=([^\x01]*)\x01auth=Bearer ([^\x01]*)\x01\x01$/.exec(text)
  return match ? { user: match[1], token: match[2] } : undefined
}

export async function startFakePop3Server(options: FakePop3Options = {}): Promise<FakePop3Server> {
  const pki = ensureTestPki()
  const key = readFileSync(pki.keyPath)
  const cert = readFileSync(pki.certPath)
  const ca = readFileSync(pki.caCertPath, 'utf8')
  const secureContext = tls.createSecureContext({ key, cert })
  const style = options.authStyle ?? 'gmail'
  const accept = options.accept ?? ((_user: string, token: string) => token === FAKE_VALID_TOKEN)
  const errorChallenge =
    options.errorChallenge === undefined
      ? style === 'gmail'
        ? GMAIL_ERROR_CHALLENGE
        : BEARER_ERROR_CHALLENGE
      : options.errorChallenge
  const authErrorLine =
    options.authErrorLine ??
    (style === 'gmail'
      ? '-ERR [AUTH] Invalid credentials.'
      : '-ERR Authentication failure: unknown user name or bad password.')

  let maildrop = (options.messages ?? []).map(toMessage)
  const sockets = new Set<net.Socket>()
  const timers = new Set<NodeJS.Timeout>()
  const server: FakePop3Server = {
    host: '127.0.0.1',
    port: 0,
    ca,
    lines: [],
    authAttempts: [],
    expunged: [],
    connections: 0,
    mailbox: () => maildrop.map((m) => ({ uid: m.uid, body: m.body })),
    deliver: (message) => {
      maildrop.push(toMessage(message, maildrop.length))
    },
    close: async () => {
      for (const timer of timers) clearTimeout(timer)
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => listener.close(() => resolve()))
    },
  }

  /** Writes an answer, applying the fault configured for `verb`. */
  const send = (session: Session, verb: string, data: string | Buffer): void => {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
    const fault = options.faults?.[verb]
    const socket = session.socket
    if (!fault) {
      socket.write(bytes)
    } else if ('hang' in fault) {
      // Say nothing, ever: the client's timeout must end this.
    } else if ('delayMs' in fault) {
      const timer = setTimeout(() => {
        timers.delete(timer)
        if (!socket.destroyed) socket.write(bytes)
      }, fault.delayMs)
      timers.add(timer)
    } else if ('hangAfterBytes' in fault) {
      socket.write(bytes.subarray(0, fault.hangAfterBytes))
    } else {
      socket.write(bytes.subarray(0, fault.closeAfterBytes), () => socket.destroy())
    }
  }
  const reply = (session: Session, verb: string, line: string): void => send(session, verb, line + CRLF)

  const capaLines = (session: Session): string[] => {
    const defaults = ['USER', 'UIDL', 'RESP-CODES', 'SASL XOAUTH2']
    const lines = options.capa === false ? [] : (options.capa ?? defaults)
    return options.stls && session.state === 'authorization' && !(session.socket instanceof tls.TLSSocket)
      ? [...lines, 'STLS']
      : lines
  }

  const finishXOAuth2 = (session: Session, b64: string, saslStyle: 'initial-response' | 'two-step'): void => {
    const decoded = decodeXOAuth2(b64)
    const ok = decoded !== undefined && accept(decoded.user, decoded.token)
    server.authAttempts.push({
      mechanism: 'XOAUTH2',
      style: saslStyle,
      user: decoded?.user ?? '',
      secret: decoded?.token ?? '',
      accepted: ok,
    })
    if (ok) {
      session.sasl = undefined
      login(session, decoded.user)
      reply(session, 'AUTH', style === 'gmail' ? '+OK Welcome.' : '+OK User successfully authenticated.')
    } else if (errorChallenge) {
      // RFC 7628 section 3.2.2: the error goes in a challenge; the client aborts, then the server fails.
      session.sasl = { step: 'abort', style: saslStyle }
      reply(session, 'AUTH', `+ ${Buffer.from(JSON.stringify(errorChallenge)).toString('base64')}`)
    } else {
      session.sasl = undefined
      reply(session, 'AUTH', authErrorLine)
    }
  }

  const login = (session: Session, user: string): void => {
    session.state = 'transaction'
    session.user = user
    session.messages = maildrop.slice()
    session.deleted = new Set()
  }

  /** The message for a number argument, or an -ERR already sent. */
  const messageFor = (session: Session, verb: string, arg: string | undefined): number | undefined => {
    const n = Number(arg)
    if (!arg || !Number.isInteger(n) || n < 1 || n > session.messages.length) {
      reply(session, verb, '-ERR There is no such message.')
      return undefined
    }
    if (session.deleted.has(n)) {
      reply(session, verb, '-ERR Message is deleted.')
      return undefined
    }
    return n
  }

  const handleLine = (session: Session, line: string): void => {
    server.lines.push(line)
    if (session.sasl) {
      const sasl = session.sasl
      if (line === '*') {
        session.sasl = undefined
        reply(session, 'AUTH', '-ERR Authentication aborted.')
      } else if (sasl.step === 'response') {
        finishXOAuth2(session, line, sasl.style)
      } else {
        session.sasl = undefined
        reply(session, 'AUTH', authErrorLine)
      }
      return
    }
    const [rawVerb = '', ...args] = line.split(' ')
    const verb = rawVerb.toUpperCase()
    const inTransaction = session.state === 'transaction'
    const live = (): Array<{ n: number; uid: string; body: Buffer }> =>
      session.messages.map((m, i) => ({ n: i + 1, ...m })).filter((m) => !session.deleted.has(m.n))

    switch (verb) {
      case 'CAPA': {
        const lines = capaLines(session)
        if (options.capa === false) reply(session, verb, '-ERR Unknown command.')
        else send(session, verb, ['+OK Capability list follows', ...lines, '.', ''].join(CRLF))
        return
      }
      case 'STLS': {
        if (!options.stls || session.state !== 'authorization' || session.socket instanceof tls.TLSSocket) {
          reply(session, verb, '-ERR STLS not available.')
          return
        }
        session.upgrading = true
        send(session, verb, `+OK Begin TLS negotiation now.${CRLF}${options.stlsInjection ?? ''}`)
        upgrade(session)
        return
      }
      case 'AUTH': {
        if (session.state !== 'authorization') return reply(session, verb, '-ERR Already authenticated.')
        if ((args[0] ?? '').toUpperCase() !== 'XOAUTH2') {
          return reply(session, verb, '-ERR Unsupported mechanism.')
        }
        if (args[1] !== undefined) {
          if (style === 'microsoft') {
            return reply(session, verb, '-ERR Initial response is not accepted here.')
          }
          finishXOAuth2(session, args[1], 'initial-response')
        } else {
          session.sasl = { step: 'response', style: 'two-step' }
          reply(session, verb, '+ ')
        }
        return
      }
      case 'USER': {
        if (session.state !== 'authorization') return reply(session, verb, '-ERR Already authenticated.')
        session.user = args.join(' ')
        return reply(session, verb, '+OK')
      }
      case 'PASS': {
        if (session.state !== 'authorization' || session.user === undefined) {
          return reply(session, verb, '-ERR USER first.')
        }
        const password = line.slice(5)
        const ok = options.users?.[session.user] === password
        server.authAttempts.push({
          mechanism: 'USER',
          style: 'user-pass',
          user: session.user,
          secret: password,
          accepted: ok,
        })
        if (!ok) return reply(session, verb, '-ERR [AUTH] Authentication failed.')
        login(session, session.user)
        return reply(session, verb, '+OK Logged in.')
      }
      case 'QUIT': {
        if (inTransaction) {
          // RFC 1939 section 6: the UPDATE state removes the messages marked deleted.
          const gone = new Set([...session.deleted].map((n) => session.messages[n - 1].uid))
          maildrop = maildrop.filter((m) => !gone.has(m.uid))
          server.expunged.push(...gone)
        }
        send(session, verb, `+OK Logging out.${CRLF}`)
        if (!options.faults?.QUIT) session.socket.end()
        return
      }
    }

    if (!inTransaction) return reply(session, verb, '-ERR Not authenticated.')
    switch (verb) {
      case 'STAT': {
        const messages = live()
        const octets = messages.reduce((sum, m) => sum + m.body.length, 0)
        return reply(session, verb, `+OK ${messages.length} ${octets}`)
      }
      case 'LIST':
      case 'UIDL': {
        const value = (m: { uid: string; body: Buffer }): string | number =>
          verb === 'UIDL' ? m.uid : m.body.length
        if (args[0] !== undefined) {
          const n = messageFor(session, verb, args[0])
          if (n !== undefined) reply(session, verb, `+OK ${n} ${value(session.messages[n - 1])}`)
          return
        }
        const lines = live().map((m) => `${m.n} ${value(m)}`)
        return send(session, verb, ['+OK', ...lines, '.', ''].join(CRLF))
      }
      case 'RETR': {
        const n = messageFor(session, verb, args[0])
        if (n === undefined) return
        const body = session.messages[n - 1].body
        const status = Buffer.from(`+OK ${body.length} octets${CRLF}`)
        return send(session, verb, Buffer.concat([status, dotStuff(body)]))
      }
      case 'DELE': {
        const n = messageFor(session, verb, args[0])
        if (n === undefined) return
        session.deleted.add(n)
        return reply(session, verb, `+OK Marked to be deleted.`)
      }
      case 'RSET':
        session.deleted.clear()
        return reply(session, verb, '+OK')
      case 'NOOP':
        return reply(session, verb, '+OK')
      default:
        return reply(session, verb, '-ERR Unknown command.')
    }
  }

  /** Feeds a socket's bytes to handleLine, line by line. */
  const readLines = (session: Session, socket: net.Socket): void => {
    let pending = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      if (session.socket !== socket) return
      pending += chunk
      for (let lf = pending.indexOf('\n'); lf >= 0 && !session.upgrading; lf = pending.indexOf('\n')) {
        const line = pending.slice(0, lf).replace(/\r$/, '')
        pending = pending.slice(lf + 1)
        handleLine(session, Buffer.from(line, 'latin1').toString('utf8'))
      }
    })
  }

  const upgrade = (session: Session): void => {
    const plain = session.socket
    plain.removeAllListeners('data')
    const secure = new tls.TLSSocket(plain, { isServer: true, secureContext })
    sockets.add(secure)
    secure.on('error', () => secure.destroy())
    secure.on('close', () => sockets.delete(secure))
    secure.once('secure', () => {
      session.upgrading = false
      session.socket = secure
      readLines(session, secure)
    })
  }

  const onConnection = (socket: net.Socket): void => {
    server.connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    const session: Session = {
      socket,
      state: 'authorization',
      messages: [],
      deleted: new Set(),
      upgrading: false,
    }
    readLines(session, socket)
    send(session, 'GREETING', (options.greeting ?? '+OK Fake POP3 server ready.') + CRLF)
  }

  const listener = options.tls
    ? tls.createServer({ key, cert }, onConnection)
    : net.createServer(onConnection)
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject)
    listener.listen(0, '127.0.0.1', () => resolve())
  })
  server.port = (listener.address() as net.AddressInfo).port
  return server
}
