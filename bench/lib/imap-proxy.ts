/**
 * A counting IMAP proxy for the idle-cost figure: it terminates TLS with the test certificate (the
 * product connects to it exactly as to a real IMAPS server) and forwards plain text to Dovecot,
 * counting on the way the commands the client sends (tagged lines, RFC 3501 section 2.2.1) and
 * the bytes each side sends. Command arguments are never recorded: the AUTHENTICATE line carries
 * the bearer token.
 */
import { EventEmitter } from 'node:events'
import fs from 'node:fs'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import tls from 'node:tls'
import { nowMs } from './memory.ts'

export interface ProxyConnection {
  id: number
  openedAt: number
  closedAt?: number
  /** Command names in order (`SELECT`, `UID FETCH`, ...), without arguments. */
  commands: Array<{ at: number; name: string }>
  bytesFromClient: number
  bytesFromServer: number
  /** When the client sent IDLE (RFC 2177): the sync is over and the mailbox waits for mail. */
  idleAt?: number
  /** Bytes each way up to the IDLE command. */
  bytesBeforeIdle?: { fromClient: number; fromServer: number }
}

export interface CountingProxy {
  port: number
  connections: ProxyConnection[]
  events: EventEmitter
  /** Forgets the connections seen so far (open ones keep counting into their own records). */
  reset(): void
  stop(): Promise<void>
}

/** Splits the client's byte stream into command lines, skipping literals (`{n}` / `{n+}`, RFC 7888). */
class CommandParser {
  private buf: Buffer = Buffer.alloc(0)
  private literalLeft = 0
  private continuing = false

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk
    for (;;) {
      if (this.literalLeft > 0) {
        const take = Math.min(this.literalLeft, this.buf.length)
        this.literalLeft -= take
        this.buf = this.buf.subarray(take)
        if (this.literalLeft > 0) return
        continue
      }
      const end = this.buf.indexOf('\r\n')
      if (end < 0) {
        // A line longer than this is not IMAP a client of ours sends; do not buffer without bound.
        if (this.buf.length > 1_000_000) this.buf = Buffer.alloc(0)
        return
      }
      const line = this.buf.subarray(0, end).toString('latin1')
      this.buf = this.buf.subarray(end + 2)
      // The rest of a command after a literal is not a new command.
      if (!this.continuing) this.onLine(line)
      const literal = /\{(\d+)\+?\}$/.exec(line)
      this.literalLeft = literal ? Number(literal[1]) : 0
      this.continuing = literal !== null
    }
  }
}

/** The command name of a client line, or undefined for SASL continuation data and `DONE`. */
export function commandName(line: string): string | undefined {
  const m = /^([^\s+*]+) ([A-Za-z]+)(?: ([A-Za-z]+))?/.exec(line)
  if (!m) return undefined
  const verb = m[2]!.toUpperCase()
  return verb === 'UID' && m[3] ? `UID ${m[3].toUpperCase()}` : verb
}

export async function startCountingProxy(opts: { upstreamPort: number; certPath: string; keyPath: string }): Promise<CountingProxy> {
  const events = new EventEmitter()
  let connections: ProxyConnection[] = []
  let nextId = 1
  const sockets = new Set<net.Socket>()
  const server = tls.createServer({ cert: fs.readFileSync(opts.certPath), key: fs.readFileSync(opts.keyPath) }, (client) => {
    const conn: ProxyConnection = { id: nextId++, openedAt: nowMs(), commands: [], bytesFromClient: 0, bytesFromServer: 0 }
    connections.push(conn)
    const upstream = net.connect({ host: '127.0.0.1', port: opts.upstreamPort })
    sockets.add(client)
    sockets.add(upstream)
    const parser = new CommandParser((line) => {
      const name = commandName(line)
      if (!name) return
      const at = nowMs()
      conn.commands.push({ at, name })
      if (name === 'IDLE' && conn.idleAt === undefined) {
        conn.idleAt = at
        conn.bytesBeforeIdle = { fromClient: conn.bytesFromClient, fromServer: conn.bytesFromServer }
        events.emit('idle', conn)
      }
    })
    client.on('data', (chunk: Buffer) => {
      conn.bytesFromClient += chunk.length
      parser.push(chunk)
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      conn.bytesFromServer += chunk.length
      client.write(chunk)
    })
    const close = () => {
      conn.closedAt ??= nowMs()
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on('close', close)
    upstream.on('close', close)
    client.on('error', close)
    upstream.on('error', close)
  })
  server.listen(0, '127.0.0.1')
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve)
    server.once('error', reject)
  })
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return connections
    },
    events,
    reset() {
      connections = []
    },
    async stop() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
