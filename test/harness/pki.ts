/**
 * A private certificate authority and one server certificate for the loopback test servers
 * (Dovecot, the SMTP sink). Tests keep TLS verification ON: the test runner exports
 * `NODE_EXTRA_CA_CERTS=$(npx tsx test/harness/pki.ts)` so that every Node process trusts this CA,
 * exactly as production code trusts the public CAs of Google and Microsoft.
 *
 * Created once per machine under `os.tmpdir()/deskmail-test-pki` with the `openssl` CLI. Several
 * test processes may start at the same time (`node --test` runs files in parallel), so the files
 * are made in a private temporary directory which is then renamed into place: `rename(2)` of a
 * directory onto an existing non-empty one fails, and the loser simply uses the winner's files.
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

export interface TestPki {
  /** Directory holding every file below. */
  dir: string
  /** PEM of the private CA: the value for `NODE_EXTRA_CA_CERTS` or a `tls: { ca }` option. */
  caCertPath: string
  /** PEM of the server certificate (SAN IP:127.0.0.1, DNS:localhost), signed by the CA. */
  certPath: string
  /** PEM of the server certificate's private key (unencrypted). */
  keyPath: string
}

const PKI_DIR_NAME = 'deskmail-test-pki'
const FILES = { ca: 'ca.pem', caKey: 'ca-key.pem', cert: 'server.pem', key: 'server-key.pem' } as const

function pkiPaths(dir: string): TestPki {
  return {
    dir,
    caCertPath: path.join(dir, FILES.ca),
    certPath: path.join(dir, FILES.cert),
    keyPath: path.join(dir, FILES.key),
  }
}

function isComplete(pki: TestPki): boolean {
  return existsSync(pki.caCertPath) && existsSync(pki.certPath) && existsSync(pki.keyPath)
}

function openssl(args: string[], cwd: string): void {
  // stdio ignored: openssl writes progress to stderr, and the script mode must print one line only.
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

function generate(workDir: string): void {
  // P-256 keys: fast to generate, accepted by OpenSSL 3 (Dovecot), Node and Chromium.
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  openssl(
    [
      'req', '-x509', ...ecKey, '-keyout', FILES.caKey, '-out', FILES.ca, '-days', '3650',
      '-subj', '/CN=deskmail test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ],
    workDir,
  )
  openssl(
    ['req', '-new', ...ecKey, '-keyout', FILES.key, '-out', 'server.csr', '-subj', '/CN=127.0.0.1'],
    workDir,
  )
  // Clients match the host against the subjectAltName only (RFC 6125 section 6.4.4), so both the
  // IP literal and the name must be there.
  writeFileSync(
    path.join(workDir, 'server.ext'),
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '',
    ].join('\n'),
  )
  openssl(
    [
      'x509', '-req', '-in', 'server.csr', '-CA', FILES.ca, '-CAkey', FILES.caKey, '-CAcreateserial',
      '-out', FILES.cert, '-days', '3650', '-sha256', '-extfile', 'server.ext',
    ],
    workDir,
  )
}

/** Creates the test PKI if needed (idempotent, safe across concurrent processes) and returns its paths. */
export function ensureTestPki(): TestPki {
  const pki = pkiPaths(path.join(os.tmpdir(), PKI_DIR_NAME))
  if (isComplete(pki)) return pki

  const workDir = mkdtempSync(path.join(os.tmpdir(), `${PKI_DIR_NAME}-tmp-`))
  try {
    // mkdtemp gives 0700; the CA and certificate must be readable by any user running tests.
    chmodSync(workDir, 0o755)
    generate(workDir)
    // A leftover incomplete directory (a run killed half-way before this scheme existed) is replaced.
    if (existsSync(pki.dir) && !isComplete(pki)) rmSync(pki.dir, { recursive: true, force: true })
    try {
      renameSync(workDir, pki.dir)
    } catch (err) {
      // Another process won the race: its files are as good as ours.
      if (!isComplete(pki)) throw err
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true })
  }
  return pki
}

// `npx tsx test/harness/pki.ts` prints the CA path only, for `export NODE_EXTRA_CA_CERTS=$(...)`.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.stdout.write(`${ensureTestPki().caCertPath}\n`)
}
