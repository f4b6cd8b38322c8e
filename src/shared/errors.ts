/**
 * One error type for the whole service. `code` is stable and maps to one admin-facing message
 * (see `describeError`), `transient` says whether retrying later can help, `cause` keeps the
 * original error for logs. HTTP statuses live in `web/` only.
 */
export class AppError extends Error {
  readonly code: string
  readonly transient: boolean
  /** Extra, non-secret facts for the admin (e.g. the account that signed in instead). */
  readonly details: Record<string, string | number | undefined>

  constructor(
    code: string,
    message: string,
    options: { transient?: boolean; cause?: unknown; details?: Record<string, string | number | undefined> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'AppError'
    this.code = code
    this.transient = options.transient ?? false
    this.details = options.details ?? {}
  }
}

export function isAppError(err: unknown, code?: string): err is AppError {
  return err instanceof AppError && (code === undefined || err.code === code)
}
