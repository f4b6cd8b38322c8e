/**
 * A parser worker for tests: the real parser, except for messages that carry an
 * `X-Test-Behaviour` header, which make the worker crash, throw, hang or run out of memory.
 */
import { parseMail } from '../../src/mail/mime/parse-mail.ts'
import { serveParseRequests } from '../../src/mail/mime/parser-worker-protocol.ts'

serveParseRequests(async (raw, options) => {
  const head = Buffer.from(raw.buffer, raw.byteOffset, Math.min(raw.byteLength, 300)).toString('latin1')
  const behaviour = /^X-Test-Behaviour: (\S+)/m.exec(head)?.[1]
  switch (behaviour) {
    case 'exit':
      process.exit(3)
    case 'uncaught':
      setImmediate(() => {
        throw new Error('boom from the misbehaving worker')
      })
      return new Promise(() => {})
    case 'hang':
      for (;;) {
        // a synchronous loop: only terminating the worker stops it
      }
    case 'oom': {
      const hog: string[][] = []
      for (;;) hog.push(Array.from({ length: 100_000 }, (_, i) => `${i}-${hog.length}`))
    }
  }
  return parseMail(raw, options)
})
