// Real servers on 127.0.0.1 for the tests of the whole project. See /work/shared/HARNESS.md.
export { ensureTestPki } from './pki.ts'
export type { TestPki } from './pki.ts'
export {
  GOOGLE_MAIL_SCOPE,
  MAIL_AUDIENCE,
  MAIL_SCOPES,
  MICROSOFT_MAIL_SCOPES,
  startOAuthServer,
} from './oauth-server.ts'
export type {
  AuthorizeHeadlessOptions,
  IssuedTokens,
  IssueTokensOptions,
  OAuthServer,
  RegisterClientOptions,
} from './oauth-server.ts'
export { startDovecot } from './dovecot.ts'
export type { DovecotMechanism, DovecotServer, StartDovecotOptions } from './dovecot.ts'
export { startSmtpSink } from './smtp-sink.ts'
export type { ReceivedMessage, SmtpSink, StartSmtpSinkOptions } from './smtp-sink.ts'
export { launchBrowser } from './browser.ts'
export type { TestBrowser } from './browser.ts'
export { createTestDatabase } from './postgres.ts'
export type { TestDatabase } from './postgres.ts'
export { freePort, waitForPort } from './ports.ts'
