import { describe, it, mock, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { TokenRefresher } from '../../src/oauth/token-refresher.ts'
import type { CredentialStore } from '../../src/oauth/credential-store.ts'
import { createLogger } from '../../src/shared/logger.ts'

/** A deterministic random sequence (mulberry32), so that the spread is reproducible. */
function seeded(seed: number): () => number {
  return () => {
    seed |= 0
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve()
}

describe('token refresher', () => {
  afterEach(() => mock.timers.reset())

  it('when 200 credentials expire together, then each is refreshed once, spread over time, a few at a time', async () => {
    mock.timers.enable({ apis: ['setTimeout'] })
    let now = 1_000_000
    const expiresAt = now + 4 * 60_000
    const due = Array.from({ length: 200 }, (_, i) => ({ id: i + 1, expiresAt }))
    const refreshed = new Map<number, number>()
    const startedAt: number[] = []
    let inFlight = 0
    let maxInFlight = 0
    const store = {
      // The store lists what is still due: refreshed credentials drop out.
      dueForRefresh: async () => due.filter((d) => !refreshed.has(d.id)),
      accessToken: async (id: number) => {
        inFlight++
        maxInFlight = Math.max(maxInFlight, inFlight)
        startedAt.push(now)
        await new Promise((r) => setTimeout(r, 200))
        refreshed.set(id, (refreshed.get(id) ?? 0) + 1)
        inFlight--
        return 'token'
      },
    } as unknown as CredentialStore
    const refresher = new TokenRefresher(store, createLogger({ level: 'silent' }), {
      intervalMs: 30_000,
      concurrency: 4,
      marginMs: 90_000,
      random: seeded(42),
      now: () => now,
    })
    await refresher.start()
    await flush()
    assert.equal(refresher.pending, 200)
    assert.ok(refreshed.size < 10, 'not all at once')
    // Run the clock to the expiry, 100 ms at a time (the listing repeats every 30 s meanwhile).
    while (now < expiresAt) {
      now += 100
      mock.timers.tick(100)
      await flush()
    }
    await refresher.stop()
    assert.equal(refreshed.size, 200)
    assert.ok([...refreshed.values()].every((n) => n === 1), 'each credential refreshed once')
    assert.ok(maxInFlight <= 4, `at most 4 at once (saw ${maxInFlight})`)
    assert.ok(Math.max(...startedAt) <= expiresAt - 90_000 + 1_000, 'all done before the margin')
    // Spread: no 10-second window holds more than a fifth of them.
    const perWindow = new Map<number, number>()
    for (const t of startedAt) perWindow.set(Math.floor(t / 10_000), (perWindow.get(Math.floor(t / 10_000)) ?? 0) + 1)
    assert.ok(Math.max(...perWindow.values()) <= 40, `spread over time (busiest 10 s: ${Math.max(...perWindow.values())})`)
  })

  it('when a refresh fails, then the refresher logs it and carries on with the others', async () => {
    mock.timers.enable({ apis: ['setTimeout'] })
    let now = 5_000_000
    const calls: number[] = []
    const store = {
      dueForRefresh: async () => (calls.length ? [] : [{ id: 1, expiresAt: now }, { id: 2, expiresAt: now }]),
      accessToken: async (id: number) => {
        calls.push(id)
        if (id === 1) throw Object.assign(new Error('invalid_grant'), { code: 'oauth_invalid_grant' })
        return 'token'
      },
    } as unknown as CredentialStore
    const refresher = new TokenRefresher(store, createLogger({ level: 'silent' }), { random: () => 0.5, now: () => now })
    await refresher.start()
    await flush()
    now += 10
    mock.timers.tick(10)
    await flush()
    await refresher.stop()
    assert.deepEqual(calls.sort(), [1, 2])
  })
})
