import { once } from 'node:events'
import net from 'node:net'
import type { AddressInfo } from 'node:net'

/**
 * A currently free TCP port on 127.0.0.1, for servers that cannot listen on port 0 themselves
 * (Dovecot takes its ports from a config file). The port is released before it is returned, so
 * another process could take it in between: rare enough on a test machine, and a clash fails loudly.
 */
export async function freePort(): Promise<number> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Resolves once `127.0.0.1:port` accepts a TCP connection; rejects after `timeoutMs`. */
export async function waitForPort(
  port: number,
  timeoutMs = 10_000,
  isAborted: () => boolean = () => false,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port })
      socket.once('connect', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (ok) return
    if (isAborted()) throw new Error(`port ${port}: the server exited before listening`)
    if (Date.now() > deadline) throw new Error(`port ${port}: nothing listening after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}
