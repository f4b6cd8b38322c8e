import pino from 'pino'
import type { Logger } from 'pino'

export type { Logger }

/**
 * Paths pino blanks out wherever they appear in a log object: tokens, secrets, passwords, cookies
 * and authorization headers must never reach the logs (PROVIDERS.md, OAuth client security).
 */
export const redactedPaths = [
  'accessToken', 'refreshToken', 'access_token', 'refresh_token', 'id_token', 'clientSecret', 'client_secret',
  'password', 'code_verifier', 'codeVerifier', 'token', 'secret', 'authorizationCode',
  '*.accessToken', '*.refreshToken', '*.access_token', '*.refresh_token', '*.id_token', '*.clientSecret',
  '*.client_secret', '*.password', '*.code_verifier', '*.codeVerifier', '*.token', '*.secret',
  'req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]', 'headers.authorization', 'headers.cookie',
]

export function createLogger(options: { level?: string; destination?: pino.DestinationStream; name?: string } = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      name: options.name ?? 'deskmail',
      redact: { paths: redactedPaths, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination,
  )
}
