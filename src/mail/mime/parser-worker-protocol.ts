import { parentPort, workerData } from 'node:worker_threads'
import { isAppError } from '../../shared/errors.ts'
import type { ParseLimits, ParseMailOptions, ParsedMail } from './types.ts'

/**
 * Messages between the parser pool (main thread) and a parser worker. Everything is structured-clone
 * data; attachment contents travel as transferred ArrayBuffers.
 */
export interface ParseRequest {
  id: number
  /** The raw message (a copy, or the caller's bytes transferred with `{ transfer: true }`). */
  raw: Uint8Array
  /** Sanitize the HTML body too (`ParseMailOptions.sanitizeHtml`). */
  sanitizeHtml?: boolean
}

export type ParseResponse =
  | { type: 'ready' }
  | { type: 'parsed'; id: number; mail: ParsedMail }
  | { type: 'failed'; id: number; code: string; message: string }

export interface ParserWorkerData {
  limits: Partial<ParseLimits>
}

export type ParseFunction = (raw: Uint8Array, options: ParseMailOptions) => Promise<ParsedMail>

/**
 * The body of a parser worker: answers every `ParseRequest` on the parent port with `parse`.
 * Exported (rather than inlined in parser-worker.ts) so that tests can start a worker that
 * misbehaves on purpose around the real parser.
 */
export function serveParseRequests(parse: ParseFunction): void {
  const port = parentPort
  if (!port) throw new Error('serveParseRequests must run in a worker thread')
  const { limits } = (workerData ?? { limits: {} }) as ParserWorkerData
  // One message at a time, in arrival order: the pool sends the next message ahead so the worker
  // never waits for the main thread, and relies on the order to know which message was being
  // parsed when the worker crashed or hung (that one is blamed, the others are retried).
  const queue: ParseRequest[] = []
  let busy = false
  const next = (): void => {
    const request = queue.shift()
    if (!request) {
      busy = false
      return
    }
    busy = true
    handle(request).then(next, next)
  }
  // The pool sends several requests per message when it has them.
  port.on('message', (requests: ParseRequest | ParseRequest[]) => {
    if (Array.isArray(requests)) queue.push(...requests)
    else queue.push(requests)
    if (!busy) next()
  })
  const fail = (id: number, err: unknown): void => {
    const response: ParseResponse = {
      type: 'failed',
      id,
      code: isAppError(err) ? err.code : 'mail_unparseable',
      message: isAppError(err) ? err.message : `the parser failed: ${(err as Error | undefined)?.message}`,
    }
    port.postMessage(response)
  }
  const handle = async (request: ParseRequest): Promise<void> => {
    let mail: ParsedMail
    try {
      mail = await parse(request.raw, request.sanitizeHtml ? { limits, sanitizeHtml: true } : { limits })
    } catch (err) {
      fail(request.id, err)
      return
    }
    try {
      // Each attachment owns its ArrayBuffer (parse-mail.ts allocates one per attachment).
      const transfer = [...new Set(mail.attachments.map((a) => a.content.buffer as ArrayBuffer))]
      const response: ParseResponse = { type: 'parsed', id: request.id, mail }
      port.postMessage(response, transfer)
    } catch (err) {
      // Not structured-clone data: a bug, but this message's, and the worker carries on.
      fail(request.id, err)
    }
  }
  const ready: ParseResponse = { type: 'ready' }
  port.postMessage(ready)
}
