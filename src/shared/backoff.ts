/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"):
 * a random delay in [base, min(cap, base * 2^attempt)], so that many mailboxes failing together do
 * not retry together.
 */
export function backoffDelay(attempt: number, opts: { baseMs?: number; capMs?: number; random?: () => number } = {}): number {
  const base = opts.baseMs ?? 1_000
  const cap = opts.capMs ?? 15 * 60_000
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 30))
  return Math.round(base + (opts.random ?? Math.random)() * Math.max(0, ceiling - base))
}
