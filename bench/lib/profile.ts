/**
 * Summarizes V8 CPU profiles (`node --cpu-prof`, one file per thread) into self time by category
 * (where the CPU went: TLS, IMAP parsing, MIME parsing, HTML sanitizing, SQL, ...) and the
 * hottest functions, so that a missed figure can say what bounds it.
 */
import fs from 'node:fs'
import path from 'node:path'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples?: number[]
  timeDeltas?: number[]
}

export interface ThreadSummary {
  file: string
  thread: string
  wallMs: number
  busyMs: number
  categories: Array<{ name: string; ms: number; percentOfBusy: number }>
  functions: Array<{ name: string; where: string; ms: number }>
}

const CATEGORIES: Array<[string, (url: string, fn: string) => boolean]> = [
  ['idle', (_u, f) => f === '(idle)'],
  ['garbage collection', (_u, f) => f === '(garbage collector)'],
  ['MIME parsing (mailparser, libmime, iconv)', (u) => /node_modules\/(mailparser|libmime|libqp|libbase64|iconv-lite|encoding-japanese|punycode|@zone-eu\/mailsplit|mailsplit)\//.test(u)],
  ['HTML to text / linkify (mailparser deps)', (u) => /node_modules\/(html-to-text|linkify-it|tlds|uc\.micro|@selderee|selderee|parseley|leac|deepmerge)\//.test(u)],
  ['HTML sanitizing (sanitize-html, htmlparser2, postcss)', (u) => /node_modules\/(sanitize-html|htmlparser2|domhandler|domutils|dom-serializer|entities|postcss|parse-srcset|nanoid|picocolors|source-map-js|escape-string-regexp|is-plain-object)\//.test(u)],
  ['IMAP client (imapflow)', (u) => /node_modules\/imapflow\//.test(u)],
  ['SQL building (kysely)', (u) => /node_modules\/kysely\//.test(u)],
  ['SQLite (better-sqlite3)', (u) => /node_modules\/better-sqlite3\//.test(u)],
  ['PostgreSQL client (pg)', (u) => /node_modules\/(pg|pg-protocol|pg-pool|pg-types|postgres-[a-z]+)\//.test(u)],
  ['deskmail ingest (filters, pipeline, repository)', (u) => /\/src\/(ingest|requests|outbox)\//.test(u)],
  ['deskmail MIME wrapper (parse-mail, pool)', (u) => /\/src\/mail\/mime\//.test(u)],
  ['deskmail sync + supervisor', (u) => /\/src\/mailboxes\//.test(u)],
  ['deskmail other', (u) => /\/src\//.test(u)],
  ['logging (pino)', (u) => /node_modules\/(pino|pino-std-serializers|sonic-boom|fast-redact|thread-stream)\//.test(u)],
  ['TLS, sockets, crypto (node)', (u, f) => /node:(tls|_tls_wrap|net|crypto|internal\/(tls|crypto|stream_base_commons|net))/.test(u) || /^(ssl|TLSWrap|writev|writeBuffer|readStart|onStreamRead|update|digest|createHash)$/i.test(f)],
  ['streams, buffers, events (node)', (u) => /node:(internal\/streams|stream|buffer|events|internal\/(buffer|event_target|util))/.test(u) || /node:internal\/(streams|webstreams)/.test(u)],
  ['worker messaging (structured clone)', (u, f) => /node:internal\/worker/.test(u) || /^(postMessage|receiveMessage|drainMessagePort|deserialize|serialize)/.test(f)],
  ['module loading (tsx, esbuild)', (u) => /node_modules\/(tsx|esbuild|get-tsconfig)\//.test(u) || /node:internal\/modules/.test(u)],
  ['regular expressions, JSON, strings (native)', (_u, f) => /^(exec|test|replace|split|match|parse|stringify|toString|slice|indexOf|normalize|toLowerCase|decode|encode)$/.test(f)],
  ['other node internals', (u) => u.startsWith('node:')],
  ['native / unattributed', (u, f) => u === '' || f === '(program)'],
]

function categoryOf(url: string, fn: string): string {
  for (const [name, test] of CATEGORIES) if (test(url, fn)) return name
  return /node_modules\/([^/]+)/.exec(url)?.[1] ?? 'other'
}

export function summarizeProfile(file: string): ThreadSummary {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  // Self time per node from the sample deltas (µs), more exact than hitCount × interval.
  const self = new Map<number, number>()
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time before sample i; attribute the gap to the next sample's node.
    const dt = deltas[i + 1] ?? 0
    self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + dt)
  }
  const categories = new Map<string, number>()
  const functions = new Map<string, { name: string; where: string; us: number }>()
  let busyUs = 0
  for (const [id, us] of self) {
    const node = byId.get(id)
    if (!node) continue
    const { functionName, url, lineNumber } = node.callFrame
    const cat = categoryOf(url, functionName)
    categories.set(cat, (categories.get(cat) ?? 0) + us)
    if (cat !== 'idle') busyUs += us
    if (cat === 'idle' || cat === 'garbage collection') continue
    const where = url ? `${url.replace(/^file:\/\/.*?\/(node_modules|src|bench)\//, '$1/')}:${lineNumber + 1}` : '(native)'
    const key = `${functionName || '(anonymous)'} ${where}`
    const f = functions.get(key) ?? { name: functionName || '(anonymous)', where, us: 0 }
    f.us += us
    functions.set(key, f)
  }
  const base = path.basename(file)
  // CPU.<date>.<time>.<pid>.<threadId>.<seq>.cpuprofile; thread 0 is the main thread.
  const threadId = base.split('.')[4]
  return {
    file: base,
    thread: threadId === '0' ? 'main' : `worker ${threadId}`,
    wallMs: (profile.endTime - profile.startTime) / 1000,
    busyMs: busyUs / 1000,
    categories: [...categories]
      .filter(([name]) => name !== 'idle')
      .map(([name, us]) => ({ name, ms: Math.round(us / 1000), percentOfBusy: Math.round((us / Math.max(1, busyUs)) * 1000) / 10 }))
      .sort((a, b) => b.ms - a.ms),
    functions: [...functions.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, 15)
      .map((f) => ({ name: f.name, where: f.where, ms: Math.round(f.us / 1000) })),
  }
}

export function formatSummaries(summaries: ThreadSummary[]): string {
  const out: string[] = []
  for (const s of summaries) {
    out.push(`${s.thread}: busy ${(s.busyMs / 1000).toFixed(2)} s of ${(s.wallMs / 1000).toFixed(2)} s profiled`)
    for (const c of s.categories.slice(0, 12)) out.push(`  ${String(c.percentOfBusy).padStart(5)}%  ${String(c.ms).padStart(6)} ms  ${c.name}`)
    out.push('  hottest functions (self time):')
    for (const f of s.functions.slice(0, 10)) out.push(`    ${String(f.ms).padStart(6)} ms  ${f.name}  ${f.where}`)
  }
  return out.join('\n')
}
