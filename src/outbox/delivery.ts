import crypto from 'node:crypto'
import { PassThrough } from 'node:stream'
import type { Readable } from 'node:stream'
import type { Transporter } from 'nodemailer'
import { createSmtpTransport } from '../mail/smtp/transport.ts'
import type { MailLogin } from '../mail/imap/connect.ts'
import type { EmailServer, OutboxItem } from '../storage/schema.ts'
import type { Logger } from '../shared/logger.ts'
import { classifyDeliveryError } from './delivery-errors.ts'
import type { DeliveryFailure } from './delivery-errors.ts'

export type SendResult = { ok: true; response: string } | { ok: false; failure: DeliveryFailure }

interface PooledTransport {
  transport: Transporter
  fingerprint: string
  inflight: number
  lastUsed: number
  retired: boolean
}

/** The sendMail option that carries our "whole message read by the connection" callback to the plugin below. */
const HANDED_OVER = 'deskmailOnHandedOver'

/**
 * A nodemailer `stream` plugin that wraps the final message stream: the SMTP connection starts
 * reading it only after the server answered DATA with 354, so its 'end' means the whole message
 * went to the socket and only the reply to the final dot is outstanding. A connection lost after
 * that point may have delivered the message (RFC 1047); before it, the server cannot have accepted
 * anything.
 */
interface PluginMail {
  data: Record<string, unknown>
  message: { processFunc(fn: (input: Readable) => Readable): void }
}

function trackHandOver(mail: PluginMail, done: (err?: Error | null) => void): void {
  const onHandedOver = mail.data[HANDED_OVER]
  if (typeof onHandedOver === 'function') {
    mail.message.processFunc((input) => {
      const output = new PassThrough()
      input.on('error', (err) => output.destroy(err))
      output.once('end', () => onHandedOver())
      return input.pipe(output)
    })
  }
  done()
}

/** Pooled connections unused for this long are closed (servers drop idle sessions after a few minutes anyway). */
const IDLE_CLOSE_MS = 60_000

/**
 * SMTP delivery of stored messages: one pooled nodemailer transport per outgoing server, recreated
 * when the login changes (a refreshed access token, a new password), so that every new connection
 * authenticates with the current token (PROVIDERS.md, SASL: "take a fresh token on every
 * (re)connect"). An old transport still carrying a message is closed once that message is done.
 */
export class SmtpDelivery {
  readonly #pools = new Map<number, PooledTransport>()
  #timer: NodeJS.Timeout | undefined

  constructor(private readonly logger: Logger) {}

  /**
   * Sends the stored raw message of `item` with its envelope. `onProgress` runs periodically while
   * the message is in flight (the caller extends its claim).
   */
  async send(server: EmailServer, login: MailLogin, item: OutboxItem, onProgress?: () => void): Promise<SendResult> {
    const pooled = this.acquire(server, login)
    let dataHandedOver = false
    const heartbeat = onProgress ? setInterval(onProgress, 10_000) : undefined
    try {
      const info = await pooled.transport.sendMail({
        envelope: { from: item.envelope_from, to: item.envelope_to.split(',').filter(Boolean) },
        raw: item.raw,
        [HANDED_OVER]: () => {
          dataHandedOver = true
        },
      } as object)
      return { ok: true, response: String(info.response ?? '250 accepted') }
    } catch (err) {
      const failure = classifyDeliveryError(err, { host: server.host, port: server.port, dataHandedOver, oauth: 'accessToken' in login })
      // A connection that failed may be half-broken: the next attempt starts a fresh pool.
      if (failure.verdict !== 'failed') this.retire(server.id)
      return { ok: false, failure }
    } finally {
      if (heartbeat) clearInterval(heartbeat)
      this.release(pooled)
    }
  }

  /** Forget the pool of a server (e.g. after its token was refused). */
  retire(serverId: number): void {
    const p = this.#pools.get(serverId)
    if (!p) return
    this.#pools.delete(serverId)
    p.retired = true
    if (p.inflight === 0) p.transport.close()
  }

  close(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    for (const id of [...this.#pools.keys()]) this.retire(id)
  }

  private acquire(server: EmailServer, login: MailLogin): PooledTransport {
    if (!this.#timer) {
      this.#timer = setInterval(() => this.closeIdle(), IDLE_CLOSE_MS / 2)
      this.#timer.unref()
    }
    // The fingerprint is a hash: the token itself is never kept beside the pool or logged.
    const secret = 'accessToken' in login ? login.accessToken : login.password
    const fingerprint = crypto
      .createHash('sha256')
      .update([server.host, server.port, server.security, login.user, secret].join('\u0000'))
      .digest('hex')
    let p = this.#pools.get(server.id)
    if (p && p.fingerprint !== fingerprint) {
      this.retire(server.id)
      p = undefined
    }
    if (!p) {
      const transport = createSmtpTransport(server, login, { pool: true })
      // nodemailer's pool sends a message again by itself only when the server closed a reused
      // connection before a byte of the message was read (pool-resource.js: `readableDidRead ===
      // false`), which cannot deliver twice; every other failure comes back to the outbox.
      transport.use('stream', trackHandOver as never)
      transport.on('error', (err) => this.logger.debug({ serverId: server.id, err: { message: err.message } }, 'smtp pool error'))
      p = { transport, fingerprint, inflight: 0, lastUsed: Date.now(), retired: false }
      this.#pools.set(server.id, p)
    }
    p.inflight++
    p.lastUsed = Date.now()
    return p
  }

  private release(p: PooledTransport): void {
    p.inflight--
    p.lastUsed = Date.now()
    if (p.retired && p.inflight === 0) p.transport.close()
  }

  private closeIdle(): void {
    const now = Date.now()
    for (const [id, p] of this.#pools) if (p.inflight === 0 && now - p.lastUsed > IDLE_CLOSE_MS) this.retire(id)
  }
}
