import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely'

/**
 * The one typed schema shared by SQLite and PostgreSQL (kysely's `Database` interface).
 * Conventions that keep the two dialects identical from the code's point of view:
 * - timestamps are integer milliseconds since the epoch (`bigint` on PostgreSQL, parsed to number),
 * - booleans are integers 0/1,
 * - binary data is a Buffer (`blob` / `bytea`),
 * - secrets are `*_enc` text columns produced by `shared/secret-box.ts`, never plain text.
 */
type Id = Generated<number>
type Millis = number
type Bool = number
/** A column the database fills with its default when an insert leaves it out. */
type Defaulted<T> = ColumnType<T, T | undefined, T>

export interface UsersTable {
  id: Id
  email: string
  name: string
  password_hash: string
  role: 'admin' | 'agent'
  created_at: Millis
  last_login_at: Millis | null
}

export interface ApiTokensTable {
  id: Id
  name: string
  token_hash: string
  token_prefix: string
  user_id: number | null
  created_at: Millis
  last_used_at: Millis | null
  revoked_at: Millis | null
}

export interface SettingsTable {
  key: string
  value: string
}

export type CredentialStatus =
  | 'pending_authorization'
  | 'connected'
  | 'refreshing'
  | 'degraded'
  | 'needs_reauthorization'

/** An OAuth 2.0 client registration and the tokens one account granted to it. */
export interface CredentialsTable {
  id: Id
  provider: string
  client_id: string
  client_secret_enc: string | null
  auth_method: 'client_secret_post' | 'client_secret_basic'
  authorization_url: string
  token_url: string
  revocation_url: string | null
  issuer: string | null
  scope: string
  account_email: string | null
  account_subject: string | null
  access_token_enc: string | null
  access_token_expires_at: Millis | null
  refresh_token_enc: string | null
  status: CredentialStatus
  status_code: string | null
  status_message: string | null
  consecutive_failures: Defaulted<number>
  next_attempt_at: Millis | null
  refreshed_at: Millis | null
  refresh_claimed_by: string | null
  refresh_claim_until: Millis | null
  version: Defaulted<number>
  created_at: Millis
  updated_at: Millis
}

export type ServerStatus =
  | 'pending_authorization'
  | 'connected'
  | 'degraded'
  | 'needs_reauthorization'
  | 'error'
  | 'disabled'

export interface EmailServersTable {
  id: Id
  direction: 'incoming' | 'outgoing'
  name: string
  email_address: string
  protocol: 'imap' | 'pop3' | 'smtp'
  host: string
  port: number
  security: 'tls' | 'starttls' | 'none'
  folder: Defaulted<string>
  auth_type: 'oauth2' | 'password'
  credential_id: number | null
  username: string | null
  password_enc: string | null
  enabled: Defaulted<Bool>
  status: ServerStatus
  status_code: string | null
  status_message: string | null
  last_sync_at: Millis | null
  last_success_at: Millis | null
  last_error_at: Millis | null
  poll_interval_seconds: Defaulted<number>
  ack_action: 'leave' | 'seen' | 'move' | 'delete'
  ack_folder: string | null
  outgoing_server_id: number | null
  auto_ack_enabled: Defaulted<Bool>
  auto_ack_subject: string | null
  auto_ack_body: string | null
  from_address: string | null
  display_name: string | null
  is_default: Defaulted<Bool>
  created_at: Millis
  updated_at: Millis
}

/** A pending authorization: what the callback may trust (RFC 9700 section 4.7, RFC 7636). */
export interface OAuthAuthorizationsTable {
  id: Id
  state_hash: string
  session_id: string
  user_id: number
  server_id: number
  credential_id: number
  code_verifier_enc: string
  token_url: string
  expected_issuer: string | null
  nonce: string | null
  redirect_uri: string
  created_at: Millis
  expires_at: Millis
  used_at: Millis | null
}

export interface MailboxCursorsTable {
  server_id: number
  folder: string
  uidvalidity: string
  last_uid: number
  highest_modseq: string | null
  updated_at: Millis
}

export interface Pop3UidlsTable {
  server_id: number
  uidl: string
  seen_at: Millis
}

export interface MailboxLeasesTable {
  server_id: number
  owner: string | null
  epoch: Defaulted<number>
  expires_at: Millis
  acquired_at: Millis | null
}

export interface WorkersTable {
  id: string
  host: string
  pid: number
  started_at: Millis
  heartbeat_at: Millis
  concurrency: number
  stopping: Defaulted<Bool>
}

export interface RawMailTable {
  hash: string
  size: number
  content: Buffer
  created_at: Millis
}

export type InboundOutcome = 'new_request' | 'reply' | 'ignored' | 'quarantined' | 'pending'

/** The Email Audit: one row per message received, whatever became of it. */
export interface InboundMailTable {
  id: Id
  server_id: number
  source_key: string
  raw_hash: string
  size: number
  message_id_header: string | null
  sender: string | null
  subject: string | null
  received_at: Millis
  outcome: InboundOutcome
  outcome_reason: string | null
  request_id: number | null
  message_id: number | null
  attempts: Defaulted<number>
  processed_at: Millis | null
}

export interface ContactsTable {
  id: Id
  email: string
  name: string | null
  created_at: Millis
}

export interface RequestsTable {
  id: Id
  number: number
  subject: string
  requester_id: number | null
  server_id: number | null
  status: 'open' | 'pending' | 'resolved' | 'closed'
  is_bulk: Defaulted<Bool>
  created_at: Millis
  last_activity_at: Millis
}

export interface MessagesTable {
  id: Id
  request_id: number
  direction: 'inbound' | 'outbound'
  inbound_mail_id: number | null
  message_id_header: string | null
  in_reply_to: string | null
  references_header: string | null
  from_address: string | null
  from_name: string | null
  to_addresses: string | null
  cc_addresses: string | null
  subject: string | null
  text_body: string | null
  html_body: string | null
  remote_images: Defaulted<number>
  flags: string | null
  author_user_id: number | null
  delivery_status: 'received' | 'queued' | 'sent' | 'failed' | 'bounced'
  delivery_error: string | null
  created_at: Millis
}

export interface AttachmentsTable {
  id: Id
  message_id: number
  filename: string
  content_type: string
  size: number
  content_id: string | null
  inline: Defaulted<Bool>
  sha256: string
  content: Buffer
}

export type OutboxStatus = 'queued' | 'sending' | 'sent' | 'failed' | 'waiting_authorization' | 'uncertain'

export interface OutboxTable {
  id: Id
  kind: 'reply' | 'auto_ack' | 'test'
  message_id: number | null
  request_id: number | null
  server_id: number | null
  status: OutboxStatus
  envelope_from: string
  envelope_to: string
  message_id_header: string
  raw: Buffer
  attempts: Defaulted<number>
  next_attempt_at: Millis
  last_error: string | null
  smtp_response: string | null
  claimed_by: string | null
  claim_until: Millis | null
  attempt_started_at: Millis | null
  created_at: Millis
  sent_at: Millis | null
}

export interface AutoReplyLogTable {
  id: Id
  server_id: number
  recipient: string
  sent_at: Millis
}

export interface Database {
  users: UsersTable
  api_tokens: ApiTokensTable
  settings: SettingsTable
  credentials: CredentialsTable
  email_servers: EmailServersTable
  oauth_authorizations: OAuthAuthorizationsTable
  mailbox_cursors: MailboxCursorsTable
  pop3_uidls: Pop3UidlsTable
  mailbox_leases: MailboxLeasesTable
  workers: WorkersTable
  raw_mail: RawMailTable
  inbound_mail: InboundMailTable
  contacts: ContactsTable
  requests: RequestsTable
  messages: MessagesTable
  attachments: AttachmentsTable
  outbox: OutboxTable
  auto_reply_log: AutoReplyLogTable
}

export type User = Selectable<UsersTable>
export type Credential = Selectable<CredentialsTable>
export type EmailServer = Selectable<EmailServersTable>
export type NewEmailServer = Insertable<EmailServersTable>
export type EmailServerUpdate = Updateable<EmailServersTable>
export type Request = Selectable<RequestsTable>
export type Message = Selectable<MessagesTable>
export type InboundMail = Selectable<InboundMailTable>
export type OutboxItem = Selectable<OutboxTable>
