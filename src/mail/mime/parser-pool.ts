import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { AppError } from '../../shared/errors.ts'
import type { ParseRequest, ParseResponse, ParserWorkerData } from './parser-worker-protocol.ts'
import { defaultParseLimits } from './types.ts'
import type { ParseLimits, ParsedMail } from './types.ts'

/**
 * A pool of worker threads running `parseMail` (and the HTML sanitizer, with `sanitizeHtml`), so
 * that this CPU-bound work runs beside the main thread, which keeps the IMAP connections and the
 * database, and so that a message that makes the parser hang, crash or run out of memory costs
 * one worker, not the process: that worker is terminated and replaced, and only that message's
 * promise rejects with `AppError('mail_unparseable')`.
 */
export interface ParserPool {
  /**
   * Parses one raw message in a worker. Rejects with `AppError('mail_unparseable', reason)` when
   * the message cannot be parsed (the caller quarantines it), with `AppError('parser_unavailable')`
   * (transient) when workers cannot be started, and `AppError('parser_pool_closed')` (transient)
   * after `close()`.
   *
   * By default the bytes of `raw` are copied into the worker when it starts on the message, and
   * `raw` stays usable (the pipeline stores it); do not modify it until the promise settles (it is
   * read again if the message has to be retried on another worker). A `raw` backed by a
   * SharedArrayBuffer is not copied: the worker reads it in place. With `{ transfer: true }` the
   * memory is moved instead of copied and `raw` is detached (empty) afterwards; that only happens
   * when `raw` spans its whole ArrayBuffer, else it is copied anyway.
   */
  parse(raw: Uint8Array, options?: ParseOptions): Promise<ParsedMail>
  /** Rejects queued and running parses with `parser_pool_closed` and stops every worker. */
  close(): Promise<void>
  /** Numbers for metrics. */
  stats(): ParserPoolStats
}

export interface ParseOptions {
  /** Move `raw`'s memory to the worker instead of copying it (see `parse`). */
  transfer?: boolean
  /** Also sanitize the HTML body into `ParsedMail.safeHtml`, in the worker. */
  sanitizeHtml?: boolean
}

export interface ParserPoolStats {
  workers: number
  busy: number
  queued: number
  /** Workers replaced after a crash, an out-of-memory or a timeout since the pool started. */
  replaced: number
}

export interface ParserPoolOptions {
  /** Worker threads. Default `defaultPoolSize()`. */
  size?: number
  /** Limits for `parseMail` inside the workers. */
  limits?: Partial<ParseLimits>
  /**
   * Hard bound per message in ms: past it the worker is terminated (a synchronous loop cannot be
   * interrupted any other way). Default `limits.timeoutMs` + 5 s, so that the parser's own
   * soft timeout normally answers first and the worker survives.
   */
  timeoutMs?: number
  /** V8 old-generation heap per worker in MB; a worker that needs more dies alone. Default 512. */
  maxHeapMb?: number
  /** Entry module of the worker. Default the real parser-worker; tests pass a misbehaving one. */
  workerUrl?: URL
}

interface Job {
  id: number
  /** The caller's bytes: read (copied) at every dispatch, or moved once when transferred. */
  raw: Uint8Array
  /** Transferred jobs are detached once sent: they are only sent to an idle worker and never retried. */
  transfer: boolean
  /** Size of the message (`raw` is emptied once transferred). */
  bytes: number
  sanitizeHtml: boolean
  resolve(mail: ParsedMail): void
  reject(err: AppError): void
}

interface Slot {
  worker: Worker
  ready: boolean
  /** Sent and not answered yet, oldest first. The worker parses them one at a time in this order. */
  inflight: Job[]
  /** Raw bytes of `inflight`. */
  inflightBytes: number
  /** Timer for inflight[0], the message the worker is parsing. */
  timer?: NodeJS.Timeout
  /** Why the worker died, when it died of an uncaught error (read in the 'exit' handler). */
  crash?: Error
  stopping: boolean
}

const youngGenerationMb = 48

/** After this many workers in a row die before they are ready, the pool stops trying. */
const maxStartFailures = 3

/**
 * Messages (and bytes of them) sent to a worker ahead of its answers, so that it does not idle
 * while the main thread is busy. Those waiting behind a message that kills the worker are retried
 * on another worker, so depth costs nothing in correctness; the byte bound keeps large mail from
 * piling up in a worker's memory.
 */
const maxInflightMessages = 64
const maxInflightBytes = 16 * 1024 * 1024

function defaultWorkerUrl(): URL {
  // Run from source (tsx) the sibling is a .ts file; from compiled output it is .js.
  const extension = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
  return new URL(`./parser-worker${extension}`, import.meta.url)
}

/**
 * Starts a worker on `url`. Node 20 does not apply the parent's `--import tsx` loader hooks to a
 * worker's own entry module (it fails with "Unknown file extension .ts"), so a .ts entry is
 * started from a small bootstrap that registers tsx inside the worker first. tsx is resolved
 * from here, not from the working directory.
 */
function startWorker(url: URL, workerData: ParserWorkerData, maxHeapMb: number): Worker {
  // With only the old generation limited, V8 derives the young generation's size from it; it is
  // set to what the main thread gets by default (3 × 16 MB semi-spaces) so that parsing's
  // short-lived garbage is collected in a worker the way it is on the main thread.
  const resourceLimits = { maxOldGenerationSizeMb: maxHeapMb, maxYoungGenerationSizeMb: youngGenerationMb }
  if (url.pathname.endsWith('.ts')) {
    const tsxApi = import.meta.resolve('tsx/esm/api')
    const bootstrap =
      `import(${JSON.stringify(tsxApi)})` +
      `.then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}) })`
    return new Worker(bootstrap, { eval: true, workerData, resourceLimits })
  }
  return new Worker(url, { workerData, resourceLimits })
}

/**
 * One worker per core but one: the main thread needs a core of its own for the IMAP connections
 * (TLS), the database and the filters. Measured on 2 cores (the ingestion benchmark), a second
 * worker brought no throughput, since the cores were already busy, and cost about a fifth more
 * CPU per message (its own JIT warm-up and GC) and 70 MB more RSS.
 */
export function defaultPoolSize(): number {
  return Math.max(1, availableParallelism() - 1)
}

function poolClosed(): AppError {
  return new AppError('parser_pool_closed', 'the parser pool is closed', { transient: true })
}

function spansWholeBuffer(raw: Uint8Array): boolean {
  return raw.buffer instanceof ArrayBuffer && raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength
}

/** A copy of just the bytes of `raw`, in an ArrayBuffer of their own. */
function tightCopy(raw: Uint8Array): Uint8Array {
  const copy = new Uint8Array(raw.byteLength)
  copy.set(raw)
  return copy
}

export function createParserPool(options: ParserPoolOptions = {}): ParserPool {
  const size = Math.max(1, Math.floor(options.size ?? defaultPoolSize()))
  const limits: Partial<ParseLimits> = { ...options.limits }
  const softTimeout = limits.timeoutMs ?? defaultParseLimits.timeoutMs
  const hardTimeout = options.timeoutMs ?? softTimeout + 5_000
  // The in-worker timeout must fire first, or every slow message would cost a worker.
  limits.timeoutMs = Math.max(1, Math.min(softTimeout, hardTimeout - Math.min(1_000, hardTimeout / 10)))
  const workerData: ParserWorkerData = { limits }
  const workerUrl = options.workerUrl ?? defaultWorkerUrl()
  const maxHeapMb = options.maxHeapMb ?? 512

  const slots = new Set<Slot>()
  const queue: Job[] = []
  let nextId = 1
  let closed = false
  let startFailures = 0
  let replaced = 0
  let broken: AppError | undefined

  function spawn(): void {
    const worker = startWorker(workerUrl, workerData, maxHeapMb)
    const slot: Slot = { worker, ready: false, inflight: [], inflightBytes: 0, stopping: false }
    slots.add(slot)
    worker.on('message', (message: ParseResponse) => onMessage(slot, message))
    worker.on('error', (err) => {
      slot.crash = err
    })
    worker.on('exit', (code) => onExit(slot, code))
    updateRefs()
  }

  function startTimer(slot: Slot): void {
    clearTimeout(slot.timer)
    slot.timer = undefined
    const head = slot.inflight[0]
    if (head) slot.timer = setTimeout(() => onTimeout(slot, head), hardTimeout)
  }

  function onMessage(slot: Slot, message: ParseResponse): void {
    if (message.type === 'ready') {
      slot.ready = true
      startFailures = 0
      pump()
      return
    }
    const job = slot.inflight[0]
    if (!job || job.id !== message.id) return // the answer to a message that already timed out
    slot.inflight.shift()
    slot.inflightBytes -= job.bytes
    startTimer(slot)
    if (message.type === 'parsed') job.resolve(message.mail)
    else job.reject(new AppError(message.code, message.message))
    pump()
  }

  /**
   * Takes a dead (or stopped) worker's messages back: the one it was parsing is returned as the
   * culprit, the ones waiting behind it go back to the front of the queue for another worker.
   */
  function takeBack(slot: Slot): Job | undefined {
    clearTimeout(slot.timer)
    slot.timer = undefined
    const [culprit, ...waiting] = slot.inflight
    slot.inflight = []
    slot.inflightBytes = 0
    queue.unshift(...waiting)
    return culprit
  }

  function onExit(slot: Slot, code: number): void {
    slots.delete(slot)
    if (closed) return
    const culprit = takeBack(slot)
    if (culprit) {
      const why = slot.crash ? `: ${slot.crash.message}` : ` (exit code ${code})`
      const outOfMemory = (slot.crash as { code?: string } | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY'
      culprit.reject(
        new AppError(
          'mail_unparseable',
          outOfMemory
            ? `the parser ran out of memory on this message (limit ${maxHeapMb} MB)`
            : `the parser crashed on this message${why}`,
          { cause: slot.crash },
        ),
      )
    }
    if (!slot.ready && !slot.stopping) {
      startFailures++
      if (startFailures >= maxStartFailures) {
        broken = new AppError('parser_unavailable', 'the mail parser workers cannot be started', {
          transient: true,
          cause: slot.crash,
        })
        for (const queued of queue.splice(0)) queued.reject(broken)
        updateRefs()
        return
      }
    }
    replaced++
    spawn()
    pump()
  }

  /** Whether `job` may be sent to `slot` now. */
  function hasRoom(slot: Slot, job: Job): boolean {
    if (!slot.ready || slot.stopping) return false
    if (slot.inflight.length === 0) return true
    // A transferred message cannot be retried, so it never waits behind another one.
    if (job.transfer) return false
    return slot.inflight.length < maxInflightMessages && slot.inflightBytes + job.bytes <= maxInflightBytes
  }

  /**
   * Sends queued messages to the workers with room, the least loaded first, several per
   * postMessage. Workers get messages well ahead of their answers: the main thread is often busy
   * for tens of milliseconds (a batch's transaction runs synchronously on SQLite), and a worker
   * that only had the next message or two would sit idle meanwhile.
   */
  function pump(): void {
    const outgoing = new Map<Slot, { requests: ParseRequest[]; transfer: ArrayBuffer[] }>()
    while (queue.length > 0) {
      const job = queue[0]!
      let target: Slot | undefined
      for (const slot of slots) {
        if (hasRoom(slot, job) && (!target || slot.inflight.length < target.inflight.length)) target = slot
      }
      if (!target) break
      queue.shift()
      target.inflight.push(job)
      target.inflightBytes += job.bytes
      // Memory shared with the worker (a large message, see imap-sync.ts) is read where it is.
      // Otherwise the worker receives a buffer of its own by transfer: the structured clone of a
      // view would copy its whole backing ArrayBuffer (a Buffer from Node's 8 KiB pool, or a
      // slice of a large network buffer), not just the message.
      const shared = job.raw.buffer instanceof SharedArrayBuffer
      const raw = job.transfer || shared ? job.raw : tightCopy(job.raw)
      const request: ParseRequest = { id: job.id, raw }
      if (job.sanitizeHtml) request.sanitizeHtml = true
      let batch = outgoing.get(target)
      if (!batch) outgoing.set(target, (batch = { requests: [], transfer: [] }))
      batch.requests.push(request)
      if (!shared) batch.transfer.push(raw.buffer as ArrayBuffer)
      if (job.transfer) job.raw = new Uint8Array(0)
      if (target.inflight.length === 1) startTimer(target)
    }
    for (const [slot, batch] of outgoing) slot.worker.postMessage(batch.requests, batch.transfer)
    updateRefs()
  }

  function onTimeout(slot: Slot, job: Job): void {
    if (slot.inflight[0] !== job || slot.stopping) return
    const culprit = takeBack(slot)
    const reason = `parsing took longer than ${hardTimeout} ms; the parser was stopped`
    culprit?.reject(new AppError('mail_unparseable', reason))
    // The replacement is started from the 'exit' handler, like after a crash; `stopping` keeps
    // the slot out of pump() and out of the start-failure count meanwhile.
    slot.stopping = true
    void slot.worker.terminate()
    pump()
  }

  /**
   * Idle workers do not keep the process alive (a forgotten close() must not hang a CLI or a
   * test run); a worker is referenced while it has work, while work waits for it to start, and
   * while it is being stopped (its 'exit' starts the replacement).
   */
  function updateRefs(): void {
    for (const slot of slots) {
      if (slot.inflight.length > 0 || slot.stopping || (!slot.ready && queue.length > 0)) slot.worker.ref()
      else slot.worker.unref()
    }
  }

  for (let i = 0; i < size; i++) spawn()

  return {
    parse(raw, parseOptions = {}) {
      if (closed) return Promise.reject(poolClosed())
      if (broken) return Promise.reject(broken)
      const transfer = parseOptions.transfer === true && spansWholeBuffer(raw)
      return new Promise<ParsedMail>((resolve, reject) => {
        const sanitizeHtml = parseOptions.sanitizeHtml === true
        queue.push({ id: nextId++, raw, transfer, bytes: raw.byteLength, sanitizeHtml, resolve, reject })
        pump()
      })
    },

    async close() {
      if (closed) return
      closed = true
      const err = poolClosed()
      const stopping: Promise<number>[] = []
      for (const slot of slots) {
        takeBack(slot)?.reject(err)
        slot.stopping = true
        stopping.push(slot.worker.terminate())
      }
      for (const job of queue.splice(0)) job.reject(err)
      await Promise.all(stopping)
    },

    stats() {
      let busy = 0
      let inflight = 0
      for (const slot of slots) {
        if (slot.inflight.length > 0) busy++
        inflight += slot.inflight.length
      }
      return { workers: slots.size, busy, queued: queue.length + inflight - busy, replaced }
    },
  }
}
