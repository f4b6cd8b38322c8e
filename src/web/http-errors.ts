import type { AppError } from '../shared/errors.ts'

/** HTTP statuses belong to the web layer: one table from error codes to statuses. */
const statusByCode: Record<string, number> = {
  api_invalid_input: 400,
  not_found: 404,
  request_not_found: 404,
  server_not_found: 404,
  forbidden: 403,
  conflict: 409,
}

export function httpStatusFor(err: AppError): number {
  if (statusByCode[err.code]) return statusByCode[err.code]!
  if (err.code.endsWith('_not_found')) return 404
  return err.transient ? 503 : 400
}
