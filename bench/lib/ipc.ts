/**
 * Parent ↔ child plumbing. Every measurement runs in a child process of its own (`bench/child.ts`),
 * so that its RSS and CPU are its own, not the orchestrator's (which hosts the OAuth stand-in and
 * drives Dovecot). The child asks the parent for what only the parent can do (issue tokens,
 * deliver mail into Dovecot) with `callParent`, announces milestones with `emitToParent`, and
 * returns one JSON result.
 */
import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { EventEmitter } from 'node:events'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const benchDir = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
export const repoRoot = path.dirname(benchDir)

type ParentMessage = { type: 'run'; task: string; args: unknown } | { type: 'reply'; id: number; result?: unknown; error?: string }

type ChildMessage =
  | { type: 'call'; id: number; method: string; args: unknown }
  | { type: 'event'; name: string; data: unknown }
  | { type: 'result'; value: unknown }
  | { type: 'error'; message: string; stack?: string }

export type Handlers = Record<string, (args: any) => Promise<unknown> | unknown>

export interface RunChildOptions {
  task: string
  args: unknown
  handlers?: Handlers
  /** The child is killed past this (every loop of the benchmark is bounded). */
  timeoutMs: number
  /** Writes V8 CPU profiles of the child's threads there (`--cpu-prof`). */
  cpuProfDir?: string
  env?: Record<string, string>
  /** Forward the child's stderr/stdout as they come (otherwise only shown when it fails). */
  verbose?: boolean
}

export interface ChildHandle<T> {
  result: Promise<T>
  events: EventEmitter
  waitEvent<E = unknown>(name: string, timeoutMs: number): Promise<E>
  pid: number | undefined
  kill(): void
}

/** Child processes still running: killed when the orchestrator exits, whatever the reason. */
const running = new Set<ChildProcess>()
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL')
})

export function runChild<T>(opts: RunChildOptions): ChildHandle<T> {
  const execArgv = ['--import', 'tsx']
  if (opts.cpuProfDir) execArgv.push('--cpu-prof', '--cpu-prof-dir', opts.cpuProfDir)
  const child = fork(path.join(benchDir, 'child.ts'), [opts.task], {
    cwd: repoRoot,
    execArgv,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'advanced',
  })
  running.add(child)
  const events = new EventEmitter()
  let output = ''
  const collect = (chunk: Buffer) => {
    const text = chunk.toString('utf8')
    if (opts.verbose) process.stderr.write(text.replace(/^/gm, `  [${opts.task}] `))
    // Keep the tail only: a chatty child must not grow the orchestrator.
    output = (output + text).slice(-20_000)
  }
  child.stdout!.on('data', collect)
  child.stderr!.on('data', collect)

  const result = new Promise<T>((resolve, reject) => {
    let settled = false
    const fail = (message: string) => {
      if (settled) return
      settled = true
      reject(new Error(`${opts.task}: ${message}${output.trim() ? `\n--- child output (tail) ---\n${output.trim().slice(-4_000)}` : ''}`))
    }
    const timer = setTimeout(() => {
      fail(`no result after ${opts.timeoutMs} ms: killed`)
      child.kill('SIGKILL')
    }, opts.timeoutMs)
    child.on('message', async (raw) => {
      const m = raw as ChildMessage
      if (m.type === 'event') events.emit(m.name, m.data)
      else if (m.type === 'result') {
        settled = true
        clearTimeout(timer)
        resolve(m.value as T)
      } else if (m.type === 'error') fail(m.stack ?? m.message)
      else if (m.type === 'call') {
        const handler = opts.handlers?.[m.method]
        let reply: ParentMessage
        try {
          if (!handler) throw new Error(`the parent has no handler "${m.method}"`)
          reply = { type: 'reply', id: m.id, result: await handler(m.args) }
        } catch (err) {
          reply = { type: 'reply', id: m.id, error: (err as Error).message }
        }
        if (child.connected) child.send(reply)
      }
    })
    child.on('exit', (code, signal) => {
      running.delete(child)
      clearTimeout(timer)
      events.emit('exit', code)
      if (!settled) fail(`exited (${code ?? signal}) without a result`)
    })
    child.on('error', (err) => fail(err.message))
  })
  result.catch(() => {})
  child.send({ type: 'run', task: opts.task, args: opts.args } satisfies ParentMessage)

  return {
    result,
    events,
    pid: child.pid,
    kill: () => child.kill('SIGKILL'),
    waitEvent<E>(name: string, timeoutMs: number): Promise<E> {
      return new Promise<E>((resolve, reject) => {
        const timer = setTimeout(() => {
          cleanup()
          reject(new Error(`${opts.task}: no "${name}" within ${timeoutMs} ms`))
        }, timeoutMs)
        const onEvent = (data: E) => {
          cleanup()
          resolve(data)
        }
        const onExit = () => {
          cleanup()
          // The result promise carries the reason (error, output tail).
          result.then(
            () => reject(new Error(`${opts.task}: finished before "${name}"`)),
            (err) => reject(err),
          )
        }
        const cleanup = () => {
          clearTimeout(timer)
          events.off(name, onEvent)
          events.off('exit', onExit)
        }
        events.on(name, onEvent)
        events.on('exit', onExit)
      })
    },
  }
}

// ---- child side ---------------------------------------------------------------------------------

let nextCallId = 1
const pendingCalls = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>()

/** Child side: handles the parent's replies (installed by bench/child.ts). */
export function onParentMessage(m: ParentMessage): void {
  if (m.type !== 'reply') return
  const p = pendingCalls.get(m.id)
  if (!p) return
  pendingCalls.delete(m.id)
  if (m.error !== undefined) p.reject(new Error(m.error))
  else p.resolve(m.result)
}

/** Child side: asks the parent to do something (deliver mail, issue tokens) and waits for its answer. */
export function callParent<T>(method: string, args: unknown = {}): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const id = nextCallId++
    pendingCalls.set(id, { resolve: resolve as (v: unknown) => void, reject })
    process.send!({ type: 'call', id, method, args } satisfies ChildMessage)
  })
}

/** Child side: tells the parent about a milestone (e.g. "ready": the mailbox is in IDLE). */
export function emitToParent(name: string, data: unknown = null): void {
  process.send!({ type: 'event', name, data } satisfies ChildMessage)
}

export function sendResult(value: unknown): Promise<void> {
  return new Promise((resolve) => process.send!({ type: 'result', value } satisfies ChildMessage, () => resolve()))
}

export function sendError(err: unknown): Promise<void> {
  const e = err as Error
  return new Promise((resolve) =>
    process.send!({ type: 'error', message: e?.message ?? String(err), stack: e?.stack } satisfies ChildMessage, () => resolve()),
  )
}
