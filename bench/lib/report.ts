/**
 * The results of a run: one entry per figure, each with its baseline measured in the same run,
 * the ratio, the target and whether it is met, and the machine and commit it measured.
 */
import { execFileSync } from 'node:child_process'
import os from 'node:os'
import { repoRoot } from './ipc.ts'

export interface Target {
  op: '>=' | '<' | '<=' | '=='
  value: number
  unit: string
  text: string
}

export interface Comparison {
  name: string
  value: number | null
  unit: string
  /** value of the figure / value of this comparison. */
  ratio: number | null
  /** Why there is no value (e.g. fetchmail is not installed). */
  note?: string
}

export interface Figure {
  id: string
  name: string
  value: number | null
  unit: string
  /** Which way is better: decides nothing, helps reading the ratio. */
  better: 'higher' | 'lower' | 'equal'
  baseline: { name: string; value: number | null; unit: string }
  /** value / baseline.value. */
  ratio: number | null
  target: Target | null
  met: boolean | null
  /** Further baselines and peers measured in the same run. */
  comparisons: Comparison[]
  details: Record<string, unknown>
  /** Set when the figure could not be measured. */
  error?: string
  cores: number
  commit: string
  date: string
  node: string
}

export interface Environment {
  mode: 'full' | 'quick'
  date: string
  commit: string
  /** Uncommitted changes in the working tree when the run started. */
  dirty: boolean
  node: string
  cores: number
  cpu: string
  memoryMb: number
  platform: string
  /** 1-minute load average when the run started: other work on the machine skews every figure. */
  loadAverageAtStart: number
}

export interface Results extends Environment {
  durationMs: number
  /** 1-minute load average when the run ended (the run itself adds to it). */
  loadAverageAtEnd: number
  figures: Figure[]
}

export function environment(mode: 'full' | 'quick'): Environment {
  const git = (...args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    } catch {
      return ''
    }
  }
  return {
    mode,
    date: new Date().toISOString(),
    commit: git('rev-parse', 'HEAD') || 'unknown',
    dirty: git('status', '--porcelain', '--untracked-files=no') !== '',
    node: process.version,
    cores: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryMb: Math.round(os.totalmem() / 1024 / 1024),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: Math.round(os.loadavg()[0]! * 100) / 100,
  }
}

export function ratioOf(value: number | null, baseline: number | null): number | null {
  if (value === null || baseline === null || baseline === 0 || !Number.isFinite(value) || !Number.isFinite(baseline)) return null
  return value / baseline
}

export function meets(value: number | null, target: Target | null): boolean | null {
  if (!target || value === null) return null
  switch (target.op) {
    case '>=':
      return value >= target.value
    case '<':
      return value < target.value
    case '<=':
      return value <= target.value
    case '==':
      return value === target.value
  }
}

/** Builds a figure, computing ratio and met. */
export function figure(
  env: Pick<Environment, 'cores' | 'commit' | 'date' | 'node'>,
  f: Omit<Figure, 'ratio' | 'met' | 'cores' | 'commit' | 'date' | 'node' | 'comparisons' | 'details'> & {
    comparisons?: Comparison[]
    details?: Record<string, unknown>
  },
): Figure {
  return {
    ...f,
    comparisons: f.comparisons ?? [],
    details: f.details ?? {},
    ratio: ratioOf(f.value, f.baseline.value),
    met: meets(f.value, f.target),
    cores: env.cores,
    commit: env.commit,
    date: env.date,
    node: env.node,
  }
}

/** A figure that could not be measured: reported with its error instead of a number. */
export function failedFigure(
  env: Pick<Environment, 'cores' | 'commit' | 'date' | 'node'>,
  f: Pick<Figure, 'id' | 'name' | 'unit' | 'better' | 'target'> & { baselineName: string },
  err: unknown,
): Figure {
  return figure(env, {
    id: f.id,
    name: f.name,
    unit: f.unit,
    better: f.better,
    target: f.target,
    value: null,
    baseline: { name: f.baselineName, value: null, unit: f.unit },
    error: (err as Error)?.message?.split('\n')[0] ?? String(err),
    details: { errorDetail: String((err as Error)?.stack ?? err).slice(0, 4_000) },
  })
}

export function fmt(value: number | null | undefined, unit = ''): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '-'
  const abs = Math.abs(value)
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2
  const n = value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 })
  return unit ? `${n} ${unit}` : n
}

export function fmtRatio(r: number | null): string {
  if (r === null) return '-'
  return `${r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(2) : r.toFixed(3)}x`
}

/** The table printed at the end of a run (Markdown, so it can be pasted into the README as is). */
export function table(results: Results): string {
  const rows: string[][] = [['figure', 'value', 'baseline (same run)', 'ratio', 'target', 'met']]
  for (const f of results.figures) {
    rows.push([
      f.name,
      f.error ? `error: ${f.error.slice(0, 60)}` : fmt(f.value, f.unit),
      `${f.baseline.name}: ${fmt(f.baseline.value, f.baseline.unit)}`,
      fmtRatio(f.ratio),
      f.target?.text ?? '-',
      f.met === null ? '-' : f.met ? 'yes' : '**no**',
    ])
    for (const c of f.comparisons) {
      rows.push([`  vs ${c.name}`, '', c.value === null ? `- (${c.note ?? 'not measured'})` : fmt(c.value, c.unit), fmtRatio(c.ratio), '', ''])
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
  return [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n')
}

export function header(results: Results): string {
  return (
    `deskmail benchmarks (${results.mode}): ${results.date}, commit ${results.commit.slice(0, 12)}${results.dirty ? ' (+ uncommitted changes)' : ''}, ` +
    `${results.cores} cores (${results.cpu}), ${results.memoryMb} MB, Node ${results.node}, ${results.platform}; ` +
    `run took ${(results.durationMs / 1000).toFixed(0)} s; load average ${results.loadAverageAtStart} at start`
  )
}
