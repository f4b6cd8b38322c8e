/**
 * deskmail's POP3 client (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH with XOAUTH2).
 * Ours because node-pop3 has no XOAUTH2 and mishandles the `+` error challenge (DESIGN.md).
 *
 * ```ts
 * const pop = await Pop3Client.connect({ host: 'pop.gmail.com', port: 995, security: 'tls' })
 * await pop.authenticateXOAuth2(mailbox, accessToken, { style: 'initial-response' })
 * for (const { msg, uid } of await pop.uidl()) if (!known.has(uid)) store(uid, await pop.retr(msg))
 * await pop.quit()
 * ```
 *
 * Commands run one at a time, in call order, whatever the caller awaits. Every failure is an
 * AppError (`pop3_*` codes); after a timeout or a lost connection every later call fails at once
 * with the same code, and the caller reconnects (nothing here reconnects by itself).
 */
import { AppError } from '../../shared/errors.ts'
import { commands } from './commands/index.ts'
import type { Pop3AuthStyle, Pop3CommandArgs, Pop3CommandName, Pop3CommandResult } from './commands/index.ts'
import type { Pop3Command } from './commands/command.ts'
import { Pop3Connection } from './connection.ts'
import type { Pop3ConnectOptions, Pop3Security, Pop3State } from './connection.ts'

export type { Pop3AuthStyle, Pop3ConnectOptions, Pop3Security, Pop3State }
export { DEFAULT_TIMEOUT_MS } from './connection.ts'
export { POP3_ERROR_CODES } from './errors.ts'
export type { Pop3ErrorCode } from './errors.ts'

export class Pop3Client {
  private readonly conn: Pop3Connection

  private constructor(conn: Pop3Connection) {
    this.conn = conn
  }

  /**
   * Opens a session: TCP (and TLS for `tls`), the greeting, then STLS for `starttls`. Resolves in the
   * AUTHORIZATION state. Certificates are verified (Node defaults, NODE_EXTRA_CA_CERTS for a private CA).
   */
  static async connect(options: Pop3ConnectOptions): Promise<Pop3Client> {
    const conn = await Pop3Connection.open(options)
    const client = new Pop3Client(conn)
    if (options.security === 'starttls') {
      try {
        await client.run('STLS')
      } catch (err) {
        conn.close()
        throw err
      }
    }
    return client
  }

  /** RFC 1939 state: `authorization`, `transaction`, `update` or `closed`. */
  get state(): Pop3State {
    return this.conn.state
  }

  /** The greeting's text (after `+OK`). */
  get greeting(): string {
    return this.conn.greeting
  }

  /** True when the session runs over TLS (implicit or STLS). */
  get secure(): boolean {
    return this.conn.isSecure
  }

  /** CAPA: capability name (upper case) to its arguments; empty if the server has no CAPA. */
  capabilities(): Promise<Map<string, string[]>> {
    return this.run('CAPA')
  }

  /**
   * AUTH XOAUTH2. `initial-response` (default) sends the client response on the AUTH line (Gmail);
   * `two-step` waits for the server's `+` first (Microsoft). A refused token throws `pop3_auth_failed`
   * with the server's error challenge (`status`, `schemes`, `scope`) in `details`.
   */
  authenticateXOAuth2(
    user: string,
    accessToken: string,
    options: { style?: Pop3AuthStyle } = {},
  ): Promise<void> {
    return this.run('AUTH_XOAUTH2', user, accessToken, options.style ?? 'initial-response')
  }

  /** USER/PASS; a refused login throws `pop3_auth_failed`. */
  login(user: string, password: string): Promise<void> {
    return this.run('USER_PASS', user, password)
  }

  /** STAT: message count and total size in octets. */
  stat(): Promise<{ count: number; size: number }> {
    return this.run('STAT')
  }

  /** UIDL: message number and unique ID of every message not marked deleted. */
  uidl(): Promise<Array<{ msg: number; uid: string }>> {
    return this.run('UIDL')
  }

  /** LIST: message number and size of every message not marked deleted. */
  list(): Promise<Array<{ msg: number; size: number }>> {
    return this.run('LIST')
  }

  /** RETR: the message, byte-exact with its CRLF line ends. */
  retr(msg: number): Promise<Buffer> {
    return this.run('RETR', msg)
  }

  /** DELE: marks a message deleted; it is removed only by a successful `quit()`. */
  dele(msg: number): Promise<void> {
    return this.run('DELE', msg)
  }

  /** NOOP: checks the session is alive. */
  noop(): Promise<void> {
    return this.run('NOOP')
  }

  /**
   * QUIT: ends the session; from TRANSACTION the server then removes messages marked deleted.
   * Resolves only when the server confirmed (see commands/quit.ts for the failure codes); on a
   * session that is already closed it rejects, since nothing was confirmed. Use `close()` for cleanup.
   */
  quit(): Promise<void> {
    return this.run('QUIT')
  }

  /** Drops the connection without QUIT: messages marked deleted stay. Pending calls reject. */
  close(): void {
    this.conn.close()
  }

  private run<K extends Pop3CommandName>(
    name: K,
    ...args: Pop3CommandArgs<K>
  ): Promise<Pop3CommandResult<K>> {
    const command = commands[name] as unknown as Pop3Command<Pop3CommandArgs<K>, Pop3CommandResult<K>>
    return this.conn.exclusive(async () => {
      this.conn.assertUsable()
      if (!command.states.includes(this.conn.state)) {
        throw new AppError(
          'pop3_invalid_state',
          `POP3 ${command.name} is not allowed in the ${this.conn.state} state (RFC 1939 section 3)`,
        )
      }
      return command.run(this.conn, ...args)
    })
  }
}
