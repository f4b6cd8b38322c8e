/**
 * The peer: fetchmail downloading the same mailbox. fetchmail 6.4 has no working OAuth 2.0
 * against Dovecot (HARNESS.md, "Peers for benchmarks"), so it talks to Dovecot's `imap` binary
 * started for the user over a PREAUTH pipe (`--plugin`), and writes every message to a BSMTP file
 * (no MTA, no delivery script: the cheapest sink it has). `keep` + `fetchall`: nothing is deleted
 * and seen flags do not matter, the same work as deskmail's `ack_action: leave`.
 */
import { execFile, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export interface FetchmailResult {
  rate: number | null
  ms?: number
  messages?: number
  /** Why there is no rate. */
  note?: string
  version?: string
}

const DOVECOT_IMAP = '/usr/lib/dovecot/imap'

function which(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined
  } catch {
    return undefined
  }
}

export async function runFetchmail(opts: { dovecotDir: string; user: string; expected: number; timeoutMs: number }): Promise<FetchmailResult> {
  const fetchmail = which('fetchmail')
  if (!fetchmail) return { rate: null, note: 'fetchmail is not installed (apt-get install -y fetchmail)' }
  if (!fs.existsSync(DOVECOT_IMAP)) return { rate: null, note: `${DOVECOT_IMAP} not found` }
  let version: string | undefined
  try {
    version = /release\s+([\d.]+)/.exec(execFileSync(fetchmail, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))?.[1]
  } catch (err) {
    // `fetchmail --version` exits non-zero when it finds no rc file; its output is still there.
    version = /release\s+([\d.]+)/.exec(String((err as { stdout?: string }).stdout ?? ''))?.[1]
  }
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'deskmail-bench-fetchmail-'))
  try {
    const out = path.join(home, 'out.bsmtp')
    // Dovecot's imap, given fetchmail's socketpair as stdin, never answers (tried: fetchmail
    // reports a socket error); with pipes on both ends it serves the PREAUTH session normally,
    // hence `cat` on each side. They copy bytes and cost little next to fetchmail itself.
    const plugin = path.join(home, 'preauth-imap.sh')
    fs.writeFileSync(
      plugin,
      `#!/bin/sh\ncat | ${DOVECOT_IMAP} -c '${path.join(opts.dovecotDir, 'dovecot.conf')}' -u '${opts.user}' | cat\n`,
      { mode: 0o700 },
    )
    const rc = path.join(home, 'fetchmailrc')
    fs.writeFileSync(
      rc,
      `set no bouncemail\n` +
        `poll bench via 127.0.0.1 proto IMAP auth ssh plugin "${plugin}"\n` +
        `  user "${opts.user}" is "root" here\n` +
        `  bsmtp "${out}" keep fetchall no rewrite limit 0\n`,
      { mode: 0o600 },
    )
    const args = ['--sslproto', '', '-N', '-f', rc, '--nosyslog', '--idfile', path.join(home, 'ids'), '--pidfile', path.join(home, 'pid')]
    const t = performance.now()
    const failure = await new Promise<string | undefined>((resolve) => {
      execFile(
        fetchmail,
        args,
        { env: { ...process.env, HOME: home, FETCHMAILHOME: home }, timeout: opts.timeoutMs, maxBuffer: 4 * 1024 * 1024 },
        (err, _stdout, stderr) => {
          // Exit code 1 is "no mail"; anything but 0 is a failure here.
          resolve(err ? `fetchmail failed (${(err as { code?: unknown }).code ?? err.message}): ${String(stderr).replace(/.*Running as root is discouraged.\n?/, '').trim().slice(0, 300)}` : undefined)
        },
      )
    })
    const ms = performance.now() - t
    if (failure) return { rate: null, note: failure, version }
    const bsmtp = fs.existsSync(out) ? fs.readFileSync(out, 'latin1') : ''
    const messages = (bsmtp.match(/^MAIL FROM:/gm) ?? []).length
    if (messages !== opts.expected) return { rate: null, note: `fetchmail wrote ${messages} of ${opts.expected} messages`, version }
    return { rate: (messages / ms) * 1000, ms, messages, version }
  } finally {
    fs.rmSync(home, { recursive: true, force: true })
  }
}
