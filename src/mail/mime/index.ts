/**
 * Parsing raw mail (RFC 5322 / MIME) into plain, structured-clone-safe data.
 * Use `createParserPool` in servers (parsing off the main thread, on every core); `parseMail`
 * runs in the calling thread (tests, scripts, re-processing a single message).
 */
export { parseMail } from './parse-mail.ts'
export { createParserPool } from './parser-pool.ts'
export type { ParseOptions, ParserPool, ParserPoolOptions, ParserPoolStats } from './parser-pool.ts'
export { resolveCidPlaceholders } from './safe-html.ts'
export { formatMessageId, messageIdDomain, normalizeMessageId, parseMessageIdList } from './message-id.ts'
export { quotedOriginalMessageId } from './delivery-report.ts'
export { defaultParseLimits } from './types.ts'
export type {
  DeliveryReport,
  MailAddress,
  MailAttachment,
  ParseLimits,
  ParseMailOptions,
  ParsedMail,
  SafeHtml,
} from './types.ts'
