/**
 * One POP3 session: the socket (plain, implicit TLS or upgraded by STLS), its explicit state, and
 * the primitives the commands are written with (send a line, read a status line, read a body).
 *
 * States follow RFC 1939 section 3: the session is in AUTHORIZATION after the greeting, in
 * TRANSACTION after a successful login, in UPDATE after QUIT until the server answers. `connecting`
 * and `closed` bracket them. Commands run one at a time (no PIPELINING, RFC 2449 section 6.6):
 * a POP3 mailbox is read by one worker, so round trips are not the bottleneck, and strict
 * request/response keeps every answer tied to its command.
 *
 * TLS certificates are always verified with Node's defaults; a private CA is trusted through
 * NODE_EXTRA_CA_CERTS (or the `ca` option). There is deliberately no way to turn verification off.
 * @see https://www.rfc-editor.org/rfc/rfc1939#section-3
 */
import net from 'node:net'
import tls from 'node:tls'
import { AppError } from '../../shared/errors.ts'
import { commandFailed, protocolError, responseCode, isTransientResponseCode, shortText } from './errors.ts'
import { Pop3FramingError, Pop3ResponseReader } from './line-reader.ts'

export type Pop3State = 'connecting' | 'authorization' | 'transaction' | 'update' | 'closed'

export type Pop3Security = 'tls' | 'starttls' | 'none'

export interface Pop3ConnectOptions {
  host: string
  port: number
  /** `tls`: implicit TLS (port 995); `starttls`: plain, then STLS (RFC 2595); `none`: plain (loopback only). */
  security: Pop3Security
  /** Name checked against the certificate and sent as SNI (unless an IP address); defaults to `host`. */
  servername?: string
  /** Inactivity limit, in ms, for connecting and for every answer awaited. Default 30 s. */
  timeoutMs?: number
  /**
   * Trust anchors to use instead of the system's, e.g. a test CA. Verification stays on either way;
   * in production prefer NODE_EXTRA_CA_CERTS, which adds to the system store.
   */
  ca?: string | Buffer | Array<string | Buffer>
}

export const DEFAULT_TIMEOUT_MS = 30_000

// Errors that mean the TCP connection itself could not be made (or was lost): worth a retry later.
const NETWORK_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
])

export class Pop3Connection {
  readonly host: string
  readonly port: number
  readonly security: Pop3Security
  readonly timeoutMs: number
  /** The name the certificate must carry: `servername`, else `host`. */
  private readonly servername: string
  private readonly ca: Pop3ConnectOptions['ca']

  /** RFC 1939 section 3 state; see the file comment. */
  state: Pop3State = 'connecting'
  /** The greeting's text after `+OK`. */
  greeting = ''
  /**
   * CAPA answer cached by the capa command; cleared on STLS (RFC 2595 section 4) and on login
   * (RFC 2449 section 5).
   */
  capabilities: Map<string, string[]> | undefined

  private socket: net.Socket
  private readonly reader = new Pop3ResponseReader()
  /** True once the TLS handshake completed (implicit TLS or STLS). */
  private secured = false
  /** True while a TLS handshake is in progress: an error then is a TLS failure. */
  private handshaking = false
  private wake: { resolve: () => void; reject: (err: AppError) => void } | undefined
  private failure: AppError | undefined
  private queue: Promise<unknown> = Promise.resolve()

  private readonly onData = (chunk: Buffer): void => {
    this.reader.push(chunk)
    this.notify()
  }
  private readonly onError = (err: Error): void => this.fail(this.socketError(err))
  private readonly onClose = (): void =>
    this.fail(
      new AppError('pop3_connection_closed', `POP3 server ${this.endpoint} closed the connection`, {
        transient: true,
      }),
    )
  private readonly onTimeout = (): void =>
    this.fail(
      new AppError(
        'pop3_timeout',
        `POP3 server ${this.endpoint} did not answer within ${this.timeoutMs} ms`,
        { transient: true, details: { timeoutMs: this.timeoutMs } },
      ),
    )
  private readonly onSecure = (): void => {
    this.secured = true
    this.handshaking = false
    this.notify()
  }

  private constructor(options: Pop3ConnectOptions) {
    this.host = options.host
    this.port = options.port
    this.security = options.security
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    this.servername = options.servername ?? options.host
    this.ca = options.ca
    if (options.security === 'tls') {
      this.handshaking = true
      this.socket = tls.connect({ ...this.tlsOptions(), port: this.port })
    } else {
      this.socket = net.connect({ host: this.host, port: this.port })
    }
    this.attach(this.socket)
  }

  /**
   * Connects (with TLS for `tls`) and reads the greeting. Resolves in the AUTHORIZATION state; for
   * `starttls` the caller sends STLS next, before anything else.
   */
  static async open(options: Pop3ConnectOptions): Promise<Pop3Connection> {
    validateOptions(options)
    const conn = new Pop3Connection(options)
    try {
      const greeting = await conn.readLine()
      if (!greeting.startsWith('+OK')) {
        const code = responseCode(greeting)
        throw new AppError(
          'pop3_connection_refused',
          `POP3 server ${conn.endpoint} refused the session: ${shortText(greeting)}`,
          {
            transient: !greeting.startsWith('-ERR') || code === undefined || isTransientResponseCode(code),
            details: { responseCode: code },
          },
        )
      }
      conn.greeting = greeting.slice(3).trim()
      conn.state = 'authorization'
      return conn
    } catch (err) {
      conn.close()
      throw err
    }
  }

  get endpoint(): string {
    return `${this.host}:${this.port}`
  }

  get isSecure(): boolean {
    return this.secured
  }

  /** Runs `task` after every earlier task has settled, so that commands never interleave on the wire. */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task)
    this.queue = run.catch(() => undefined)
    return run
  }

  /** Throws the session's failure (timeout, closed...) if there was one. */
  assertUsable(): void {
    if (this.failure) {
      throw new AppError(this.failure.code, this.failure.message, {
        transient: this.failure.transient,
        cause: this.failure,
        details: this.failure.details,
      })
    }
  }

  /**
   * Sends one line. CR and LF are refused inside it: they would end the command early and let the
   * rest be read as a command of its own.
   */
  writeLine(line: string): void {
    this.assertUsable()
    if (/[\r\n]/.test(line)) {
      throw new AppError('pop3_invalid_argument', 'A POP3 command argument contains a line break')
    }
    this.socket.write(`${line}\r\n`)
  }

  /** The next status or continuation line, without CRLF. */
  async readLine(): Promise<string> {
    for (;;) {
      this.assertUsable()
      let line: string | undefined
      try {
        line = this.reader.nextLine()
      } catch (err) {
        throw this.framingFailure(err)
      }
      if (line !== undefined) return line
      await this.waitForInput()
    }
  }

  /** The multi-line body that follows a `+OK` just read: dot-unstuffed, terminator removed, CRLF kept. */
  async readBody(): Promise<Buffer> {
    try {
      this.reader.beginBody()
    } catch (err) {
      throw this.framingFailure(err)
    }
    for (;;) {
      this.assertUsable()
      const body = this.reader.takeBody()
      if (body !== undefined) return body
      await this.waitForInput()
    }
  }

  /**
   * Sends a command and reads its status line. `+OK` resolves with the text after it; `-ERR`
   * throws `pop3_command_failed` naming `label` (never the line itself, which may hold a secret).
   */
  async simpleCommand(line: string, label: string): Promise<string> {
    this.writeLine(line)
    const status = await this.readLine()
    if (status.startsWith('+OK')) return status.slice(3).trim()
    if (status.startsWith('-ERR')) throw commandFailed(label, status)
    throw this.unexpected(label, status)
  }

  /** Sends a command whose `+OK` answer is followed by a multi-line body (RFC 1939 section 3). */
  async multilineCommand(line: string, label: string): Promise<{ status: string; body: Buffer }> {
    const status = await this.simpleCommand(line, label)
    const body = await this.readBody()
    return { status, body }
  }

  /** A protocol error for an answer that is neither `+OK` nor `-ERR` where one was due; closes the session. */
  unexpected(label: string, line: string): AppError {
    const err = protocolError(
      `POP3 server ${this.endpoint} answered ${label} with neither +OK nor -ERR: ${shortText(line)}`,
    )
    this.fail(err)
    return err
  }

  /**
   * Upgrades the plain socket to TLS after the server's `+OK` to STLS (RFC 2595 section 4). Bytes
   * that arrived after that `+OK` and before the handshake were not protected by TLS and may have been
   * injected by an attacker (the STARTTLS command injection, CVE-2011-0411), so they fail the session.
   */
  async upgradeToTls(): Promise<void> {
    this.assertUsable()
    if (this.reader.buffered > 0) {
      const err = new AppError(
        'pop3_tls_failed',
        `POP3 server ${this.endpoint} sent data after its STLS answer, before TLS started`,
      )
      this.fail(err)
      throw err
    }
    const plain = this.socket
    this.detach(plain)
    plain.setTimeout(0)
    // Errors on the plain socket now surface through the TLS socket wrapping it; keep one listener so
    // that none is ever unhandled.
    plain.on('error', () => undefined)
    this.handshaking = true
    this.socket = tls.connect({ ...this.tlsOptions(), socket: plain })
    this.attach(this.socket)
    while (!this.secured) {
      this.assertUsable()
      await this.waitForInput()
    }
    // RFC 2595 section 4: what was learned before TLS came from an unprotected channel.
    this.capabilities = undefined
  }

  /** Ends the session at once, without QUIT (messages marked with DELE stay). Idempotent. */
  close(): void {
    if (!this.failure) {
      this.failure = new AppError('pop3_connection_closed', `POP3 connection to ${this.endpoint} is closed`)
    }
    this.state = 'closed'
    this.socket.destroy()
    this.rejectWaiter(this.failure)
  }

  /** Half-closes after a successful QUIT, letting the server's last bytes drain. */
  end(): void {
    if (!this.failure) {
      this.failure = new AppError('pop3_connection_closed', `POP3 connection to ${this.endpoint} is closed`)
    }
    this.state = 'closed'
    this.socket.end()
    this.socket.setTimeout(0)
    // A server that never closes its side must not keep the process alive.
    setTimeout(() => this.socket.destroy(), 1000).unref()
  }

  private tlsOptions(): tls.ConnectionOptions {
    // No rejectUnauthorized option anywhere: Node's default (true) verifies the chain and the name.
    const options: tls.ConnectionOptions = { host: this.host, minVersion: 'TLSv1.2' }
    const name = this.servername
    if (net.isIP(name)) {
      // RFC 6066 section 3: SNI carries host names only. An IP address is not sent, but the
      // certificate is still checked against it (its IP subjectAltName).
      options.checkServerIdentity = (_host, cert) => tls.checkServerIdentity(name, cert)
    } else {
      options.servername = name
    }
    if (this.ca !== undefined) options.ca = this.ca
    return options
  }

  private attach(socket: net.Socket): void {
    socket.on('data', this.onData)
    socket.on('error', this.onError)
    socket.on('close', this.onClose)
    socket.on('timeout', this.onTimeout)
    socket.on('secureConnect', this.onSecure)
  }

  private detach(socket: net.Socket): void {
    socket.off('data', this.onData)
    socket.off('error', this.onError)
    socket.off('close', this.onClose)
    socket.off('timeout', this.onTimeout)
    socket.off('secureConnect', this.onSecure)
  }

  /**
   * Waits for the next chunk (or handshake completion). The inactivity timer runs only while the
   * client is waiting, so an idle session between commands is not timed out, and a long RETR is,
   * only if the server stops sending.
   */
  private waitForInput(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.failure) {
        reject(this.failure)
        return
      }
      this.wake = { resolve, reject }
      this.socket.setTimeout(this.timeoutMs)
    })
  }

  private notify(): void {
    const wake = this.wake
    if (!wake) return
    this.wake = undefined
    this.socket.setTimeout(0)
    wake.resolve()
  }

  private rejectWaiter(err: AppError): void {
    const wake = this.wake
    this.wake = undefined
    wake?.reject(err)
  }

  /** Records the first failure, closes the socket, and rejects whatever was waiting. */
  private fail(err: AppError): void {
    if (!this.failure) this.failure = err
    this.state = 'closed'
    this.socket.destroy()
    this.rejectWaiter(this.failure)
  }

  private framingFailure(err: unknown): AppError {
    const appErr =
      err instanceof Pop3FramingError
        ? protocolError(`POP3 server ${this.endpoint} broke the response framing: ${err.message}`, err)
        : protocolError(`POP3 response from ${this.endpoint} could not be read`, err)
    this.fail(appErr)
    return appErr
  }

  private socketError(err: Error): AppError {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== undefined && NETWORK_ERRORS.has(code) && !(this.handshaking && code === 'ECONNRESET')) {
      return new AppError(
        this.state === 'connecting' ? 'pop3_connection_failed' : 'pop3_connection_closed',
        `POP3 connection to ${this.endpoint} failed: ${shortText(err.message)}`,
        { transient: true, cause: err, details: { errno: code } },
      )
    }
    if (this.handshaking) {
      // Certificate not trusted, wrong name, TLS spoken to a plain port...: a settings problem, not
      // something a retry fixes.
      return new AppError(
        'pop3_tls_failed',
        `TLS with POP3 server ${this.endpoint} failed: ${shortText(err.message)}`,
        { cause: err, details: { errno: code } },
      )
    }
    return new AppError(
      'pop3_connection_closed',
      `POP3 connection to ${this.endpoint} failed: ${shortText(err.message)}`,
      { transient: true, cause: err, details: { errno: code } },
    )
  }
}

function validateOptions(options: Pop3ConnectOptions): void {
  if (typeof options.host !== 'string' || options.host.length === 0) {
    throw new AppError('pop3_invalid_argument', 'POP3 host is empty')
  }
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
    throw new AppError('pop3_invalid_argument', `POP3 port is not a TCP port: ${options.port}`)
  }
  if (!['tls', 'starttls', 'none'].includes(options.security)) {
    throw new AppError(
      'pop3_invalid_argument',
      `POP3 security must be tls, starttls or none: ${String(options.security)}`,
    )
  }
  if (options.timeoutMs !== undefined && (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0)) {
    throw new AppError(
      'pop3_invalid_argument',
      `POP3 timeout must be a positive number of ms: ${options.timeoutMs}`,
    )
  }
}
