import type { Config } from './config/index.ts'
import type { Storage } from './storage/database.ts'
import type { Logger } from './shared/logger.ts'
import { SecretBox } from './shared/secret-box.ts'
import type { Keyring } from './shared/secret-box.ts'
import { createMetrics } from './shared/metrics.ts'
import type { Metrics } from './shared/metrics.ts'
import { UserService } from './accounts/users.ts'
import { ApiTokenService } from './accounts/api-tokens.ts'
import { CredentialStore } from './oauth/credential-store.ts'
import { EmailServerService } from './mailboxes/email-servers.ts'
import { MailboxAuthorization } from './mailboxes/authorization.ts'
import { OutboxService } from './outbox/outbox.ts'
import { IngestPipeline } from './ingest/pipeline.ts'
import { RequestService } from './requests/service.ts'

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
  credentials: CredentialStore
  emailServers: EmailServerService
  mailboxAuthorization: MailboxAuthorization
  outbox: OutboxService
  ingest: IngestPipeline
  requests: RequestService
}

export function createServices(deps: { config: Config; storage: Storage; logger: Logger; keyring: Keyring }): Services {
  const { config, storage, logger, keyring } = deps
  const db = storage.db
  const secrets = new SecretBox(keyring)
  const metrics = createMetrics()
  const credentials = new CredentialStore(db, secrets, logger.child({ component: 'credentials' }), metrics, config.allowedPrivateHosts)
  const emailServers = new EmailServerService(db, secrets, credentials, logger.child({ component: 'email-servers' }), config.allowedPrivateHosts)
  const outbox = new OutboxService({ db, caps: storage.caps, messageIdDomain: config.messageIdDomain, emailServers, credentials, logger: logger.child({ component: 'outbox' }), metrics })
  const ingest = new IngestPipeline({ storage, logger: logger.child({ component: 'ingest' }), metrics, messageIdDomain: config.messageIdDomain })
  // The automatic acknowledgement is queued in the transaction that creates the request.
  ingest.onNewRequest(async (trx, event) => {
    await outbox.autoAcknowledge(trx, event)
  })
  return {
    config,
    storage,
    logger,
    keyring,
    secrets,
    metrics,
    users: new UserService(db),
    apiTokens: new ApiTokenService(db),
    credentials,
    emailServers,
    mailboxAuthorization: new MailboxAuthorization(db, secrets, credentials, emailServers, logger.child({ component: 'authorization' }), config.redirectUri),
    outbox,
    ingest,
    requests: new RequestService({ storage, parse: (raw) => ingest.parse(raw) }),
  }
}
