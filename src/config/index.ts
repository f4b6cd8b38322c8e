import fs from 'node:fs'
import path from 'node:path'
import { z } from 'zod'
import { AppError } from '../shared/errors.ts'
import { parseAllowedPrivateHosts } from '../oauth/endpoint-policy.ts'
import { generateKeyringValue, parseKeyring } from '../shared/secret-box.ts'
import type { Keyring } from '../shared/secret-box.ts'

/** Every setting deskmail reads from the environment, validated once at start. */
const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  DESKMAIL_HOST: z.string().default('0.0.0.0'),
  DESKMAIL_BASE_URL: z
    .string()
    .url()
    .refine((u) => /^https?:\/\//.test(u), 'must start with http:// or https://')
    .optional(),
  DESKMAIL_DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: z
    .string()
    .refine((u) => /^(postgres(ql)?:\/\/|sqlite:)/.test(u), 'must start with postgres://, postgresql:// or sqlite:')
    .optional(),
  DESKMAIL_SECRET_KEY: z.string().optional(),
  DESKMAIL_ADMIN_EMAIL: z.string().email().optional(),
  DESKMAIL_ADMIN_PASSWORD: z.string().min(10, 'must be at least 10 characters').optional(),
  DESKMAIL_ALLOWED_PRIVATE_HOSTS: z.string().default(''),
  DESKMAIL_LEASE_SECONDS: z.coerce.number().int().min(5).max(3600).default(30),
  DESKMAIL_HEARTBEAT_SECONDS: z.coerce.number().int().min(1).max(600).default(10),
  DESKMAIL_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(100000).default(1000),
  DESKMAIL_SECURE_COOKIES: z.enum(['auto', 'true', 'false']).default('auto'),
  DESKMAIL_MESSAGE_ID_DOMAIN: z.string().regex(/^[a-z0-9.-]+$/i, 'must be a domain name').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
})

export interface Config {
  port: number
  host: string
  baseUrl: string
  /** The one redirect URI we register at providers, never built from request input (RFC 9700 4.1). */
  redirectUri: string
  dataDir: string
  databaseUrl: string
  secretKey: string | undefined
  adminEmail: string | undefined
  adminPassword: string | undefined
  allowedPrivateHosts: string[]
  leaseSeconds: number
  heartbeatSeconds: number
  workerConcurrency: number
  secureCookies: boolean
  /** The right-hand side of the Message-IDs deskmail generates (RFC 5322 3.6.4). */
  messageIdDomain: string
  logLevel: string
}

/**
 * Reads and validates the configuration. On a bad value it throws an AppError whose message is one
 * line naming the variable, so that `deskmail` can print it instead of a stack trace.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable (`FOO=` in a .env file or compose file) means "not set".
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''))
  const parsed = envSchema.safeParse(present)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    const name = String(issue.path[0] ?? 'configuration')
    const shown = name.includes('PASSWORD') || name.includes('SECRET') ? '' : ` (got "${String(env[name])}")`
    throw new AppError('config_invalid', `${name} is invalid: ${issue.message}${shown}`)
  }
  const e = parsed.data
  let allowedPrivateHosts: string[]
  try {
    allowedPrivateHosts = parseAllowedPrivateHosts(e.DESKMAIL_ALLOWED_PRIVATE_HOSTS)
  } catch (err) {
    throw new AppError('config_invalid', `DESKMAIL_ALLOWED_PRIVATE_HOSTS is invalid: ${(err as Error).message}`)
  }
  const dataDir = path.resolve(e.DESKMAIL_DATA_DIR)
  const baseUrl = (e.DESKMAIL_BASE_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, '')
  const secureCookies = e.DESKMAIL_SECURE_COOKIES === 'auto' ? baseUrl.startsWith('https:') : e.DESKMAIL_SECURE_COOKIES === 'true'
  return {
    port: e.PORT,
    host: e.DESKMAIL_HOST,
    baseUrl,
    redirectUri: `${baseUrl}/oauth/callback`,
    dataDir,
    databaseUrl: e.DATABASE_URL ?? `sqlite:${path.join(dataDir, 'deskmail.sqlite')}`,
    secretKey: e.DESKMAIL_SECRET_KEY,
    adminEmail: e.DESKMAIL_ADMIN_EMAIL,
    adminPassword: e.DESKMAIL_ADMIN_PASSWORD,
    allowedPrivateHosts,
    leaseSeconds: e.DESKMAIL_LEASE_SECONDS,
    heartbeatSeconds: e.DESKMAIL_HEARTBEAT_SECONDS,
    workerConcurrency: e.DESKMAIL_WORKER_CONCURRENCY,
    secureCookies,
    messageIdDomain: e.DESKMAIL_MESSAGE_ID_DOMAIN ?? new URL(baseUrl).hostname,
    logLevel: e.LOG_LEVEL,
  }
}

/** Makes sure the data directory exists and is writable; one clear error otherwise. */
export function ensureDataDir(config: Config): void {
  try {
    fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 })
    fs.accessSync(config.dataDir, fs.constants.W_OK | fs.constants.R_OK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new AppError('data_dir_unusable', `DESKMAIL_DATA_DIR=${config.dataDir} is not usable (${code ?? 'error'}): it must be a writable directory`)
  }
}

/**
 * The master keyring: DESKMAIL_SECRET_KEY, or a key generated once into the data dir (mode 0600).
 * `generated` tells the caller to log a warning: a key beside the data is weaker than one kept apart.
 */
export function resolveKeyring(config: Config): { keyring: Keyring; generated: boolean; file?: string } {
  if (config.secretKey !== undefined) return { keyring: parseKeyring(config.secretKey), generated: false }
  const file = path.join(config.dataDir, 'secret.key')
  let generated = false
  if (!fs.existsSync(file)) {
    fs.writeFileSync(file, generateKeyringValue() + '\n', { mode: 0o600, flag: 'wx' })
    generated = true
  }
  try {
    return { keyring: parseKeyring(fs.readFileSync(file, 'utf8').trim()), generated, file }
  } catch (err) {
    throw new AppError('secret_key_invalid', `the key file ${file} is malformed; restore it or set DESKMAIL_SECRET_KEY`, { cause: err })
  }
}
