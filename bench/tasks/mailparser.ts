/**
 * Baseline: mailparser parsing the same messages (read from the maildir Dovecot serves) on one
 * thread, no storage; and, for reference, deskmail's own `parseMail` on one thread (the work each
 * parser-pool worker does per message).
 */
import fs from 'node:fs'
import path from 'node:path'
import { simpleParser } from 'mailparser'
import { parseMail } from '../../src/mail/mime/parse-mail.ts'
import { median } from '../lib/stats.ts'

export interface MailparserArgs {
  /** The Maildir of the mailbox (INBOX): cur/ and new/ are read. */
  maildir: string
  expected: number
  /** Also time deskmail's parseMail (one thread). */
  withParseMail: boolean
  passes: number
}

export interface MailparserResult {
  messages: number
  simpleParserRate: number
  simpleParserRuns: number[]
  parseMailRate: number | null
  parseMailRuns: number[]
}

function readMaildir(dir: string): Buffer[] {
  const out: Buffer[] = []
  for (const sub of ['cur', 'new']) {
    const d = path.join(dir, sub)
    if (!fs.existsSync(d)) continue
    for (const name of fs.readdirSync(d).sort()) out.push(fs.readFileSync(path.join(d, name)))
  }
  return out
}

/**
 * One untimed pass (JIT warm-up: the first thousands of messages parse at half speed), then the
 * median of `passes` timed passes.
 */
async function rate(raws: Buffer[], parse: (raw: Buffer) => Promise<unknown>, passes: number): Promise<{ median: number; runs: number[] }> {
  for (const raw of raws) await parse(raw)
  const runs: number[] = []
  for (let i = 0; i < passes; i++) {
    const t = performance.now()
    for (const raw of raws) await parse(raw)
    runs.push((raws.length / (performance.now() - t)) * 1000)
  }
  return { median: median(runs)!, runs }
}

export async function run(args: MailparserArgs): Promise<MailparserResult> {
  const raws = readMaildir(args.maildir)
  if (raws.length !== args.expected) throw new Error(`read ${raws.length} messages from the maildir, expected ${args.expected}`)
  const simple = await rate(raws, (raw) => simpleParser(raw), args.passes)
  const own = args.withParseMail ? await rate(raws, (raw) => parseMail(raw), args.passes) : null
  return { messages: raws.length, simpleParserRate: simple.median, simpleParserRuns: simple.runs, parseMailRate: own?.median ?? null, parseMailRuns: own?.runs ?? [] }
}
