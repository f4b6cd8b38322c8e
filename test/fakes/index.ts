// In-process fake servers for faults real servers will not produce on demand (see each file).
export {
  BEARER_ERROR_CHALLENGE,
  FAKE_VALID_TOKEN,
  GMAIL_ERROR_CHALLENGE,
  dotStuff,
  startFakePop3Server,
} from './fake-pop3-server.ts'
export type {
  FakePop3AuthAttempt,
  FakePop3AuthStyle,
  FakePop3Fault,
  FakePop3Message,
  FakePop3Options,
  FakePop3Server,
} from './fake-pop3-server.ts'
export {
  GMAIL_IMAP_DISABLED_ALERT,
  GMAIL_TOO_MANY_CONNECTIONS_ALERT,
  MS_AUTHENTICATE_FAILED_TEXT,
  MS_NOT_CONNECTED_TEXT,
  startFakeImapServer,
} from './fake-imap-server.ts'
export type {
  FakeImapAuthAttempt,
  FakeImapAuthOutcome,
  FakeImapOptions,
  FakeImapServer,
} from './fake-imap-server.ts'
export {
  FAKE_CORRELATION_ID,
  FAKE_TRACE_ID,
  GOOGLE_INVALID_CLIENT,
  GOOGLE_INVALID_GRANT,
  GOOGLE_INVALID_RAPT,
  microsoftError,
  startFakeTokenEndpoint,
} from './fake-token-endpoint.ts'
export type {
  FakeTokenEndpoint,
  RecordedTokenRequest,
  TokenScript,
  TokenStep,
  TokenStepName,
} from './fake-token-endpoint.ts'
