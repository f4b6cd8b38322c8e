import type { Pop3Command } from './command.ts'
import { AppError } from '../../../shared/errors.ts'
import { classifyMailServerError } from '../../provider-errors.ts'
import { parseSaslErrorChallenge, xoauth2InitialResponse, XOAUTH2_ERROR_ANSWER } from '../../sasl.ts'
import type { SaslErrorChallenge } from '../../sasl.ts'
import { protocolError, responseCode, shortText } from '../errors.ts'

/**
 * How the XOAUTH2 client response is sent (PROVIDERS.md, SASL):
 * - `initial-response`: `AUTH XOAUTH2 <b64>` on one line (RFC 5034 section 4), as Gmail takes it;
 * - `two-step`: `AUTH XOAUTH2`, the server's `+`, then `<b64>` on its own line, as Microsoft wants it.
 */
export type Pop3AuthStyle = 'initial-response' | 'two-step'

// Two-step success takes 2 reads ("+", "+OK"); failure at most 3 ("+", "+ <b64 JSON>", "-ERR").
// More continuations than that is a server going round in circles.
const MAX_ROUNDS = 4

function isContinuation(line: string): boolean {
  return line === '+' || line.startsWith('+ ')
}

/**
 * AUTH XOAUTH2 (RFC 5034 with the XOAUTH2 mechanism). On a refused token the server sends an error
 * challenge `+ <b64 JSON {status, schemes, scope}>`; the client answers with an empty line
 * (XOAUTH2's abort) and the server ends with `-ERR`. The parsed challenge goes into the error's
 * details; the token and the client response never go anywhere but the socket.
 * @see https://www.rfc-editor.org/rfc/rfc5034#section-4
 * @see https://developers.google.com/workspace/gmail/imap/xoauth2-protocol
 */
export const authXOAuth2: Pop3Command<[user: string, accessToken: string, style: Pop3AuthStyle], void> = {
  name: 'AUTH XOAUTH2',
  states: ['authorization'],
  async run(conn, user, accessToken, style) {
    const payload = xoauth2InitialResponse(user, accessToken)
    // A hostile or buggy server echoing our secret must not carry it into an error message. (A
    // "token" of a few characters is no real token, and redacting it would garble ordinary words.)
    const redact = (text: string): string => {
      const withoutPayload = text.split(payload).join('[redacted]')
      const withoutToken =
        accessToken.length >= 8 ? withoutPayload.split(accessToken).join('[redacted]') : withoutPayload
      return shortText(withoutToken)
    }
    let payloadSent = style === 'initial-response'
    conn.writeLine(payloadSent ? `AUTH XOAUTH2 ${payload}` : 'AUTH XOAUTH2')
    let challenge: SaslErrorChallenge | undefined
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const line = await conn.readLine()
      if (line.startsWith('+OK')) {
        conn.state = 'transaction'
        // RFC 2449 section 5: capabilities may differ once authenticated.
        conn.capabilities = undefined
        return
      }
      if (line.startsWith('-ERR')) {
        const text = redact(line)
        const classified = classifyMailServerError(text, 'pop3')
        const challengeClass = challenge
          ? classifyMailServerError(JSON.stringify(challenge), 'pop3')
          : undefined
        throw new AppError('pop3_auth_failed', `POP3 server ${conn.endpoint} refused XOAUTH2: ${text}`, {
          transient: classified?.transient ?? false,
          details: {
            user,
            status: challenge?.status,
            schemes: challenge?.schemes,
            scope: challenge?.scope,
            responseCode: responseCode(line),
            classification: classified?.code ?? challengeClass?.code,
          },
        })
      }
      if (isContinuation(line)) {
        if (!payloadSent) {
          // The server's empty challenge asks for the client response (two-step style).
          conn.writeLine(payload)
          payloadSent = true
        } else {
          // RFC 7628 section 3.2.2 error challenge: keep it for the error, then abort the exchange.
          challenge = parseSaslErrorChallenge(line.slice(1)) ?? challenge
          conn.writeLine(XOAUTH2_ERROR_ANSWER)
        }
        continue
      }
      throw conn.unexpected('AUTH XOAUTH2', redact(line))
    }
    const err = protocolError(`POP3 server ${conn.endpoint} kept sending continuations to AUTH XOAUTH2`)
    conn.close()
    throw err
  },
}
