import type { Config } from './config/index.ts'
import type { Storage } from './storage/database.ts'
import type { Logger } from './shared/logger.ts'
import { SecretBox } from './shared/secret-box.ts'
import type { Keyring } from './shared/secret-box.ts'
import { createMetrics } from './shared/metrics.ts'
import type { Metrics } from './shared/metrics.ts'
import { UserService } from './accounts/users.ts'
import { ApiTokenService } from './accounts/api-tokens.ts'

/**
 * The service container: wiring only. Web routes and workers receive this and call services,
 * never repositories or protocol clients directly.
 */
export interface Services {
  config: Config
  storage: Storage
  logger: Logger
  secrets: SecretBox
  keyring: Keyring
  metrics: Metrics
  users: UserService
  apiTokens: ApiTokenService
}

export function createServices(deps: { config: Config; storage: Storage; logger: Logger; keyring: Keyring }): Services {
  const { config, storage, logger, keyring } = deps
  const db = storage.db
  return {
    config,
    storage,
    logger,
    keyring,
    secrets: new SecretBox(keyring),
    metrics: createMetrics(),
    users: new UserService(db),
    apiTokens: new ApiTokenService(db),
  }
}
