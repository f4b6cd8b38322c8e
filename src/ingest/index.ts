/** Mail becomes requests: the pipeline, its filter chain and its helpers. */
export { IngestPipeline } from './pipeline.ts'
export type {
  BatchHooks,
  IngestOutcome,
  IngestOutcomeRow,
  IngestPipelineOptions,
  NewRequestEvent,
  NewRequestListener,
  RawMessage,
} from './pipeline.ts'
export { ingestFilters, runIngestFilters, formatRequestSubject, subjectRequestNumber } from './filters/index.ts'
export type { IngestContext, IngestFilter, IngestLookups } from './context.ts'
export { sanitizeMailHtml } from './sanitize-html.ts'
export { sanitizeAttachmentName } from './attachment-names.ts'
