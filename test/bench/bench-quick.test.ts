/**
 * The benchmarks are not tests: nothing here asserts a time, a rate or a size. This only checks
 * that `npm run bench -- --quick` runs on this machine (real Dovecot, the OAuth stand-in,
 * SQLite and PostgreSQL) and writes well-formed results: every figure with its value, its
 * baseline measured in the same run, the ratio, the core count and the commit.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const resultsFile = path.join(root, 'bench', 'results.quick.json')

/** Every figure a quick run must report (bench/figures/*). */
const expectedFigures = [
  'ingest.sqlite.rate',
  'ingest.sqlite.rss',
  'ingest.postgres.rate',
  'ingest.postgres.rss',
  'push.p50',
  'push.p95',
  'push.p99',
  'idle.commands',
  'idle.bytes',
  'idle.time',
  'large.rss-growth',
  'many.rss',
  'many.cpu',
]

function runQuickBench(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', 'bench', '--', '--quick'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-20_000)
    }
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, output }))
  })
}

describe('npm run bench -- --quick', () => {
  it('when the quick benchmark runs, then it exits 0 and writes every figure with its baseline, ratio, cores and commit', { timeout: 15 * 60_000 }, async () => {
    const started = Date.now()
    const { code, output } = await runQuickBench()
    assert.equal(code, 0, `npm run bench -- --quick failed:\n${output.slice(-6_000)}`)

    const results = JSON.parse(fs.readFileSync(resultsFile, 'utf8'))
    // Written by this run, not left over from an earlier one.
    assert.ok(Date.parse(results.date) >= started - 1_000, `results.quick.json is dated ${results.date}, before this run`)
    assert.equal(results.mode, 'quick')
    assert.equal(results.cores, os.availableParallelism())
    assert.match(results.commit, /^[0-9a-f]{40}$/)
    assert.match(results.node, /^v\d+\./)

    const ids = results.figures.map((f: { id: string }) => f.id)
    assert.deepEqual([...ids].sort(), [...expectedFigures].sort())
    for (const f of results.figures) {
      const where = `figure ${f.id}`
      assert.equal(f.error, undefined, `${where} could not be measured: ${f.error}`)
      assert.equal(typeof f.name, 'string', where)
      assert.ok(Number.isFinite(f.value), `${where}: value ${f.value}`)
      assert.equal(typeof f.unit, 'string', where)
      assert.equal(typeof f.baseline?.name, 'string', `${where}: baseline name`)
      assert.ok(Number.isFinite(f.baseline.value), `${where}: baseline value ${f.baseline?.value}`)
      assert.ok(Number.isFinite(f.ratio), `${where}: ratio ${f.ratio}`)
      if (f.baseline.value !== 0) assert.ok(Math.abs(f.ratio - f.value / f.baseline.value) < 1e-9, `${where}: ratio is value / baseline`)
      assert.equal(f.cores, results.cores, `${where}: cores`)
      assert.equal(f.commit, results.commit, `${where}: commit`)
      assert.equal(f.date, results.date, `${where}: date`)
      assert.equal(f.node, results.node, `${where}: node`)
      if (f.target !== null) {
        assert.ok(['>=', '<', '<=', '=='].includes(f.target.op), `${where}: target op`)
        assert.ok(Number.isFinite(f.target.value), `${where}: target value`)
        assert.equal(typeof f.met, 'boolean', `${where}: met`)
      } else assert.equal(f.met, null, `${where}: met without a target`)
      for (const c of f.comparisons) {
        assert.equal(typeof c.name, 'string', `${where}: comparison name`)
        // A peer that cannot run on this machine says why instead of giving a number.
        assert.ok(Number.isFinite(c.value) || typeof c.note === 'string', `${where}: comparison ${c.name}`)
      }
    }
  })
})
