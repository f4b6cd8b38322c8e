/**
 * RSS and CPU of the current process (all of its threads: the parser pool's workers included).
 * RSS is sampled on a timer; `process.resourceUsage().maxRSS` (the kernel's high-water mark since
 * the process started) backs it up for a peak that falls between two samples.
 */
export const MB = 1024 * 1024

export interface RssStats {
  samples: number
  minMb: number
  maxMb: number
  meanMb: number
  lastMb: number
  /** Where the memory was at the highest sample (main thread's V8 heap, Buffers; the rest is native and worker threads). */
  atMax: MemoryBreakdown
}

export interface MemoryBreakdown {
  rssMb: number
  heapTotalMb: number
  heapUsedMb: number
  /** Memory of the main isolate's Buffers and ArrayBuffers (outside the V8 heap). */
  arrayBuffersMb: number
  externalMb: number
}

function breakdown(m: NodeJS.MemoryUsage): MemoryBreakdown {
  const r = (n: number) => Math.round((n / MB) * 10) / 10
  return { rssMb: r(m.rss), heapTotalMb: r(m.heapTotal), heapUsedMb: r(m.heapUsed), arrayBuffersMb: r(m.arrayBuffers), externalMb: r(m.external) }
}

export class RssSampler {
  private timer: NodeJS.Timeout | undefined
  private values: number[] = []
  private max: NodeJS.MemoryUsage | undefined

  constructor(private readonly intervalMs = 20) {}

  start(): this {
    this.sample()
    this.timer = setInterval(() => this.sample(), this.intervalMs)
    // Sampling must not keep a finished child alive.
    this.timer.unref()
    return this
  }

  sample(): number {
    const m = process.memoryUsage()
    this.values.push(m.rss)
    if (!this.max || m.rss > this.max.rss) this.max = m
    return m.rss
  }

  stop(): RssStats {
    clearInterval(this.timer)
    this.sample()
    return this.stats()
  }

  stats(): RssStats {
    const v = this.values
    const sum = v.reduce((a, b) => a + b, 0)
    return {
      samples: v.length,
      minMb: Math.min(...v) / MB,
      maxMb: Math.max(...v) / MB,
      meanMb: sum / v.length / MB,
      lastMb: v[v.length - 1]! / MB,
      atMax: breakdown(this.max!),
    }
  }
}

/** The kernel's peak RSS of this process so far, in MB (getrusage ru_maxrss is in KiB on Linux). */
export function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024
}

export function rssMb(): number {
  return process.memoryUsage.rss() / MB
}

/** CPU time (user + system, every thread) spent between `start()` and `stop()`, as a share of one core. */
export class CpuMeter {
  private cpu = process.cpuUsage()
  private wall = performance.now()

  reset(): void {
    this.cpu = process.cpuUsage()
    this.wall = performance.now()
  }

  read(): { cpuMs: number; wallMs: number; percentOfOneCore: number } {
    const used = process.cpuUsage(this.cpu)
    const cpuMs = (used.user + used.system) / 1000
    const wallMs = performance.now() - this.wall
    return { cpuMs, wallMs, percentOfOneCore: (cpuMs / wallMs) * 100 }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Wall-clock milliseconds since the epoch with sub-millisecond resolution (comparable across processes). */
export function nowMs(): number {
  return performance.timeOrigin + performance.now()
}

/** Polls `check` every `everyMs` until it returns a value other than undefined/false; throws after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

export interface ManyMeasurement {
  mailboxes: number
  rssMaxMb: number
  rssMeanMb: number
  cpuPercentOfOneCore: number
  cpuMs: number
  windowMs: number
}

/** Samples RSS and CPU of this process over `windowMs`. */
export async function measureWindow(windowMs: number, mailboxes: number): Promise<ManyMeasurement> {
  const rss = new RssSampler(100).start()
  const cpu = new CpuMeter()
  await sleep(windowMs)
  const used = cpu.read()
  const r = rss.stop()
  return { mailboxes, rssMaxMb: r.maxMb, rssMeanMb: r.meanMb, cpuPercentOfOneCore: used.percentOfOneCore, cpuMs: used.cpuMs, windowMs: used.wallMs }
}

