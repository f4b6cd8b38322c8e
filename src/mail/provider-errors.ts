/**
 * Turns what a mail server said into a stable code and a sentence that tells the admin what to do.
 *
 * Rules prefer machine-readable parts where the server sends them (Microsoft AADSTS numbers, SMTP
 * enhanced status codes such as 5.7.139, bracketed IMAP/POP3 response codes, the status in a SASL
 * error challenge) and fall back to a provider's documented text only where no code exists (Gmail's
 * `[ALERT]` texts carry no code beyond ALERT). The first rule that matches wins, so specific rules
 * come before generic ones.
 *
 * Sources: /work/shared/PROVIDERS.md (Google, Microsoft, SASL sections), RFC 2449 section 8 and
 * RFC 3206 (POP3 response codes), RFC 5530 (IMAP response codes), RFC 4954 and RFC 3463 (SMTP AUTH
 * and enhanced status codes), RFC 7628 section 3.2.2 (SASL error challenge), RFC 6750 section 3.1
 * (bearer token error statuses).
 */
import { parseSaslErrorChallenge } from './sasl.ts'
import type { SaslErrorChallenge } from './sasl.ts'

export type MailProtocol = 'imap' | 'pop3' | 'smtp'

export interface MailServerErrorClass {
  /** Stable snake_case code, e.g. `gmail_imap_disabled`. */
  code: string
  /** A plain sentence for the admin: what is wrong and what to do. */
  adminMessage: string
  /** True when retrying later (with backoff) can help without anyone changing anything. */
  transient: boolean
}

/** The machine-readable parts found in a server's text. */
interface ParsedServerText {
  text: string
  protocol: MailProtocol
  /** Bracketed response codes, upper-cased atom only: `[ALERT] x` gives `ALERT`, `[SYS/TEMP]` gives `SYS/TEMP`. */
  responseCodes: Set<string>
  /** SMTP basic reply code (`535`), when the text starts with one. */
  replyCode?: number
  /** SMTP enhanced status code (`5.7.139`), RFC 3463. */
  enhancedStatus?: string
  /** Microsoft Entra error numbers (`AADSTS700082` gives `700082`). */
  aadsts: Set<string>
  /** The SASL error challenge, when the text carries one (base64 or already-decoded JSON). */
  challenge?: SaslErrorChallenge
}

interface Rule {
  code: string
  transient: boolean
  adminMessage: string
  matches(parsed: ParsedServerText): boolean
}

const GMAIL_SETTINGS = 'Gmail Settings > Forwarding and POP/IMAP'

const RULES: readonly Rule[] = [
  // --- Microsoft Entra (AADSTS) numbers: codes first, whatever the protocol [PROVIDERS.md, Microsoft] ---
  {
    code: 'ms_refresh_token_expired',
    transient: false,
    adminMessage:
      'The Microsoft refresh token expired after 90 days without use (AADSTS700082). Click Reconnect and sign in again as the mailbox owner.',
    matches: (p) => p.aadsts.has('700082'),
  },
  {
    code: 'ms_redirect_uri_mismatch',
    transient: false,
    adminMessage:
      "The redirect URI in the Microsoft app registration does not match deskmail's (AADSTS50011; the comparison is case-sensitive). Copy the redirect URI shown on this page into the app registration's Authentication settings, then click Reconnect.",
    matches: (p) => p.aadsts.has('50011'),
  },
  {
    code: 'ms_consent_missing',
    transient: false,
    adminMessage:
      'The Microsoft app has not been granted the mail permissions (AADSTS65001). Click Reconnect and accept the consent screen, or ask a tenant admin to grant admin consent.',
    matches: (p) => p.aadsts.has('65001'),
  },

  // --- Microsoft SMTP AUTH disabled: `535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication
  // is disabled for the Tenant/Mailbox` [PROVIDERS.md, Microsoft]. 5.7.139 alone means only
  // "authentication unsuccessful"; the reason is in the text, so both are checked, and the
  // distinctive phrase alone still counts if a relay dropped the enhanced code.
  {
    code: 'ms_smtp_auth_disabled',
    transient: false,
    adminMessage:
      'SMTP AUTH is disabled for this Microsoft 365 mailbox or tenant (535 5.7.139). This is a tenant setting, not a token problem: an Exchange admin must turn on Authenticated SMTP for the mailbox (Microsoft 365 admin center > Users > Mail > Manage email apps) or for the tenant, then click Test connection.',
    matches: (p) =>
      p.protocol === 'smtp' &&
      /SmtpClientAuthentication\s+is\s+disabled/i.test(p.text) &&
      (p.enhancedStatus === undefined || p.enhancedStatus === '5.7.139'),
  },

  // --- Microsoft IMAP: AUTHENTICATE succeeds, then the next command gets
  // `BAD User is authenticated but not connected` [PROVIDERS.md, Microsoft]. No code exists.
  {
    code: 'ms_authenticated_not_connected',
    transient: false,
    adminMessage:
      'Microsoft accepted the sign-in, but the account that signed in cannot open this mailbox: either a different account consented, or it has no permission on the mailbox. Click Reconnect and sign in as the mailbox owner (for a shared mailbox: as a user with Full Access, keeping the shared address as the mailbox).',
    matches: (p) => p.protocol !== 'smtp' && /User is authenticated but not connected/i.test(p.text),
  },

  // --- Gmail [ALERT] texts [PROVIDERS.md, Google]. ALERT is the only code, so the text decides. ---
  {
    code: 'gmail_imap_disabled',
    transient: false,
    adminMessage: `IMAP is turned off for this Gmail account. Enable IMAP in ${GMAIL_SETTINGS} (in Google Workspace the admin may also have to allow IMAP for the user), then click Test connection.`,
    matches: (p) => p.protocol === 'imap' && /not enabled for IMAP (use|access)/i.test(p.text),
  },
  {
    // UNCONFIRMED: the POP3 counterpart of the IMAP text is assumed, not documented. Being wrong only
    // means such a failure falls through to the generic rules below.
    code: 'gmail_pop_disabled',
    transient: false,
    adminMessage: `POP is turned off for this Gmail account. Enable POP in ${GMAIL_SETTINGS}, then click Test connection.`,
    matches: (p) => p.protocol === 'pop3' && /not enabled for POP/i.test(p.text),
  },
  {
    code: 'too_many_connections',
    transient: true,
    adminMessage:
      'The mail server refused another connection: too many connections are open to this account (Gmail allows about 15 per account). deskmail retries by itself; if this persists, close other mail clients or servers using this mailbox.',
    matches: (p) => p.protocol !== 'smtp' && /Too many simultaneous connections/i.test(p.text),
  },

  // --- Standard response codes: RFC 2449 section 8.1 / RFC 3206 (POP3), RFC 5530 (IMAP) ---
  {
    code: 'mailbox_in_use',
    transient: true,
    adminMessage:
      'Another client holds this mailbox right now (a POP3 mailbox allows one session at a time). deskmail retries by itself; if this persists, stop the other client that reads this mailbox.',
    matches: (p) =>
      (p.protocol === 'pop3' && p.responseCodes.has('IN-USE')) ||
      (p.protocol === 'imap' && p.responseCodes.has('INUSE')),
  },
  {
    code: 'login_delay',
    transient: true,
    adminMessage:
      'The server limits how often this mailbox may log in. deskmail waits and retries; if this persists, increase the polling interval.',
    matches: (p) => p.protocol === 'pop3' && p.responseCodes.has('LOGIN-DELAY'),
  },

  // --- The token itself is refused ---
  {
    // RFC 6750 section 3.1: insufficient_scope is HTTP 403.
    code: 'mail_scope_insufficient',
    transient: false,
    adminMessage:
      'The access token does not carry the mail permission this server needs. Check the Scope field (Google: https://mail.google.com/; Microsoft: IMAP.AccessAsUser.All, POP.AccessAsUser.All or SMTP.Send with offline_access), then click Reconnect.',
    matches: (p) => p.challenge?.status === '403' || p.challenge?.status === 'insufficient_scope',
  },
  {
    // IMAP `NO AUTHENTICATE failed.` (Microsoft) and `[AUTHENTICATIONFAILED]` (RFC 5530), POP3 `[AUTH]`
    // (RFC 3206 section 4), SMTP 535 5.7.8 (RFC 4954 section 6) or any 535 (including 5.7.139 for
    // reasons other than SMTP AUTH being disabled), and the 401 / invalid_token SASL error challenge.
    code: 'mail_auth_rejected',
    transient: false,
    adminMessage:
      'The mail server refused the access token. deskmail tries once with a fresh token; if this persists, click Reconnect and sign in as the mailbox account, and check that the Scope includes mail access (Google: https://mail.google.com/; Microsoft: the IMAP, POP or SMTP permission).',
    matches: (p) =>
      p.challenge?.status === '401' ||
      p.challenge?.status === 'invalid_token' ||
      (p.protocol === 'imap' &&
        (p.responseCodes.has('AUTHENTICATIONFAILED') || /AUTHENTICATE failed/i.test(p.text))) ||
      (p.protocol === 'pop3' && p.responseCodes.has('AUTH')) ||
      (p.protocol === 'smtp' &&
        (p.replyCode === 535 || p.enhancedStatus === '5.7.8' || p.enhancedStatus === '5.7.139')),
  },

  // --- Server-side failures with a standard code ---
  {
    code: 'server_temporary_failure',
    transient: true,
    adminMessage:
      'The mail server reported a temporary failure. deskmail retries with backoff; nothing needs to change unless this lasts for hours.',
    matches: (p) =>
      (p.protocol === 'pop3' && p.responseCodes.has('SYS/TEMP')) ||
      (p.protocol === 'imap' && p.responseCodes.has('UNAVAILABLE')) ||
      (p.protocol === 'smtp' && p.replyCode !== undefined && p.replyCode >= 400 && p.replyCode < 500),
  },
  {
    code: 'server_permanent_failure',
    transient: false,
    adminMessage:
      'The mail server refused the session for a reason of its own (see its message). deskmail will not retry until the server settings are changed.',
    matches: (p) => p.protocol === 'pop3' && p.responseCodes.has('SYS/PERM'),
  },
]

const RESPONSE_CODE = /\[([A-Za-z0-9][A-Za-z0-9\-/.=]*)(?:[ \]])/g
const REPLY_CODE = /^\s*([2-5]\d\d)(?:[ -]|$)/
const ENHANCED_STATUS = /(?:^|[\s-])([245]\.\d{1,3}\.\d{1,3})(?=\s|$|[.,;:])/
const AADSTS = /AADSTS(\d+)/g
const CHALLENGE_JSON = /\{[^{}]*"status"[^{}]*\}/
const BASE64_WORD = /^[A-Za-z0-9+/]{16,}={0,2}$/

function findChallenge(text: string): SaslErrorChallenge | undefined {
  const json = CHALLENGE_JSON.exec(text)
  if (json) {
    const asBase64 = parseSaslErrorChallenge(Buffer.from(json[0], 'utf8').toString('base64'))
    if (asBase64) return asBase64
  }
  for (const word of text.split(/\s+/)) {
    if (!BASE64_WORD.test(word)) continue
    const challenge = parseSaslErrorChallenge(word)
    if (challenge) return challenge
  }
  return undefined
}

function parseServerText(text: string, protocol: MailProtocol): ParsedServerText {
  const responseCodes = new Set<string>()
  for (const match of text.matchAll(RESPONSE_CODE)) responseCodes.add(match[1].toUpperCase())
  const aadsts = new Set<string>()
  for (const match of text.matchAll(AADSTS)) aadsts.add(match[1])
  const parsed: ParsedServerText = { text, protocol, responseCodes, aadsts }
  if (protocol === 'smtp') {
    const reply = REPLY_CODE.exec(text)
    if (reply) parsed.replyCode = Number(reply[1])
    const enhanced = ENHANCED_STATUS.exec(text)
    if (enhanced) parsed.enhancedStatus = enhanced[1]
  }
  const challenge = findChallenge(text)
  if (challenge) parsed.challenge = challenge
  return parsed
}

/**
 * Classifies a mail server's error text (a tagged IMAP NO/BAD line, a POP3 -ERR line, an SMTP reply,
 * or a SASL error challenge) into a stable code with an admin-facing sentence. Returns `undefined`
 * when nothing known matches; the caller then shows the server's own text.
 *
 * The text is not secret (it is what the server said); pass neither a command line nor a SASL
 * client response, which would contain the token.
 */
export function classifyMailServerError(
  text: string,
  protocol: MailProtocol,
): MailServerErrorClass | undefined {
  if (typeof text !== 'string' || text.trim().length === 0) return undefined
  const parsed = parseServerText(text, protocol)
  for (const rule of RULES) {
    if (rule.matches(parsed)) return { code: rule.code, adminMessage: rule.adminMessage, transient: rule.transient }
  }
  return undefined
}
