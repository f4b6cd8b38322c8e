import type { IngestContext, IngestFilter } from '../context.ts'
import { autoSubmitted } from './auto-submitted.ts'
import { automaticMailOutcome } from './automatic-mail-outcome.ts'
import { bounce } from './bounce.ts'
import { bulk } from './bulk.ts'
import { ownMail } from './own-mail.ts'
import { threading } from './threading.ts'

export { autoSubmitted, outOfOfficeSubject } from './auto-submitted.ts'
export { automaticMailOutcome } from './automatic-mail-outcome.ts'
export { bounce } from './bounce.ts'
export { bulk } from './bulk.ts'
export { ownMail } from './own-mail.ts'
export { threading } from './threading.ts'
export { formatRequestSubject, subjectRequestNumber } from './subject-token.ts'

/**
 * The ingest chain, in order. Loops are cut first (nothing else matters for our own mail);
 * the classifiers (auto-reply, bounce, bulk) run before threading because threading reads the
 * bounce flag; the outcome for unmatched automatic mail needs the thread.
 */
export const ingestFilters: readonly IngestFilter[] = Object.freeze([
  ownMail,
  autoSubmitted,
  bounce,
  bulk,
  threading,
  automaticMailOutcome,
])

/**
 * Runs the filters in order on `ctx` and returns it. Stops as soon as a filter sets
 * `ctx.outcome`. A filter that throws (a lookup failing, usually a database error) makes this
 * reject with that error unchanged, so the pipeline can tell a transient failure from a bad mail.
 */
export async function runIngestFilters(
  ctx: IngestContext,
  filters: readonly IngestFilter[] = ingestFilters,
): Promise<IngestContext> {
  for (const filter of filters) {
    if (ctx.outcome) break
    await filter.run(ctx)
  }
  return ctx
}
