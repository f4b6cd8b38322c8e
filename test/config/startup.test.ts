import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { loadConfig } from '../../src/config/index.ts'

const root = path.resolve(import.meta.dirname, '../..')

/** Runs the real command line with the given environment and returns what it printed. */
function deskmail(args: string[], env: Record<string, string>) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    cwd: root,
    env: { PATH: process.env.PATH!, HOME: os.tmpdir(), NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS ?? '', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.replace(/^\(node:\d+\).*\n(\(Use .*\n)?/gm, '') }
}

describe('configuration at start', () => {
  it('when nothing is set, then defaults give port 3000, SQLite in ./data and the callback URL', () => {
    const c = loadConfig({})
    assert.equal(c.port, 3000)
    assert.equal(c.baseUrl, 'http://localhost:3000')
    assert.equal(c.redirectUri, 'http://localhost:3000/oauth/callback')
    assert.equal(c.dataDir, path.resolve('./data'))
    assert.match(c.databaseUrl, /^sqlite:.*data\/deskmail\.sqlite$/)
  })

  it('when DATABASE_URL is malformed, then the start stops with one line naming it', () => {
    const r = deskmail(['serve'], { DATABASE_URL: 'mysql://nope', DESKMAIL_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'dm-')) })
    assert.equal(r.code, 1)
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
    assert.match(r.stderr, /^deskmail: DATABASE_URL is invalid/)
  })

  it('when PostgreSQL cannot be reached, then one line says so without the password', () => {
    const r = deskmail(['serve'], {
      DATABASE_URL: 'postgres://postgres:hunter22@127.0.0.1:1/none',
      DESKMAIL_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'dm-')),
    })
    assert.equal(r.code, 1)
    assert.match(r.stderr, /^deskmail: cannot connect to PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:1\/none/)
    assert.ok(!r.stderr.includes('hunter22'))
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  })

  it('when DESKMAIL_SECRET_KEY is malformed, then one line names it', () => {
    const r = deskmail(['serve'], { DESKMAIL_SECRET_KEY: 'not-a-key', DESKMAIL_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'dm-')) })
    assert.equal(r.code, 1)
    assert.match(r.stderr, /^deskmail: DESKMAIL_SECRET_KEY must be a base64-encoded 32-byte key/)
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  })

  it('when the data directory is not writable, then one line names DESKMAIL_DATA_DIR', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dm-')), 'a-file')
    fs.writeFileSync(file, '')
    const r = deskmail(['serve'], { DESKMAIL_DATA_DIR: path.join(file, 'data') })
    assert.equal(r.code, 1)
    assert.match(r.stderr, /^deskmail: DESKMAIL_DATA_DIR=.* is not usable/)
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  })

  it('when a second process opens the same SQLite database, then it is refused with a clear message', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-'))
    const { openStorage } = await import('../../src/storage/database.ts')
    const first = await openStorage(`sqlite:${path.join(dir, 'deskmail.sqlite')}`, { lock: true })
    try {
      const r = deskmail(['serve'], { DESKMAIL_DATA_DIR: dir, PORT: '0' })
      assert.equal(r.code, 1)
      assert.match(r.stderr, /^deskmail: another deskmail process \(pid \d+\) is using .*deskmail\.sqlite; SQLite mode runs one process/)
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
    } finally {
      await first.close()
    }
    // Once the first process is gone, the lock is free again.
    const again = await openStorage(`sqlite:${path.join(dir, 'deskmail.sqlite')}`, { lock: true })
    await again.close()
  })

  it('when asked for help, then every command describes itself', () => {
    const main = deskmail(['--help'], {})
    assert.equal(main.code, 0)
    for (const cmd of ['serve', 'web', 'worker', 'migrate', 'api-token']) {
      assert.match(main.stdout, new RegExp(`\\b${cmd}\\b`))
      const one = deskmail([cmd, '--help'], {})
      assert.equal(one.code, 0)
      assert.match(one.stdout, new RegExp(`Usage: deskmail ${cmd}`))
    }
  })

  it('when a token is created on the command line, then it is printed once and works only as a hash in the database', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-'))
    const r = deskmail(['api-token', 'create', '--name', 'ci'], { DESKMAIL_DATA_DIR: dir })
    assert.equal(r.code, 0, r.stderr)
    const token = r.stdout.trim()
    assert.match(token, /^dmk_[A-Za-z0-9_-]{40,}$/)
    const dbBytes = fs.readFileSync(path.join(dir, 'deskmail.sqlite'))
    assert.ok(!dbBytes.includes(Buffer.from(token)))
  })
})
