/**
 * The real servers of a benchmark run, held by the orchestrator: the stand-in OAuth 2.0 server
 * (oidc-provider) and a private Dovecot, the same harness the tests use (test/harness). Children
 * reach them over loopback and ask the orchestrator (IPC) for tokens and deliveries.
 */
import { ensureTestPki } from '../../test/harness/pki.ts'
import { startOAuthServer } from '../../test/harness/oauth-server.ts'
import type { OAuthServer } from '../../test/harness/oauth-server.ts'
import { startDovecot } from '../../test/harness/dovecot.ts'
import type { DovecotServer } from '../../test/harness/dovecot.ts'
import type { IssuedTokens } from './product.ts'
import type { WorldInfo } from './world-info.ts'

const CLIENT = { id: 'deskmail-bench', secret: 'bench-client-secret-0123456789abcdef' }
const SCOPE = 'https://mail.google.com/'

export interface World {
  info: WorldInfo
  oauth: OAuthServer
  dovecot: DovecotServer
  issueTokens(email: string): Promise<IssuedTokens>
  stop(): Promise<void>
}

export async function startWorld(): Promise<World> {
  const pki = ensureTestPki()
  const oauth = await startOAuthServer()
  let dovecot: DovecotServer
  try {
    dovecot = await startDovecot({
      oauth: { introspectionUrl: oauth.introspectionUrl, clientId: oauth.introspectionClient.id, clientSecret: oauth.introspectionClient.secret },
    })
  } catch (err) {
    await oauth.stop()
    throw err
  }
  oauth.registerClient({
    client_id: CLIENT.id,
    client_secret: CLIENT.secret,
    // Never visited: the benchmark mints tokens directly (issueTokens) instead of a consent flow.
    redirect_uris: ['http://127.0.0.1:3000/oauth/callback'],
  })
  const info: WorldInfo = {
    imap: { host: '127.0.0.1', tlsPort: dovecot.imapsPort, plainPort: dovecot.imapPort },
    oauth: { authorizationUrl: oauth.authorizationUrl, tokenUrl: oauth.tokenUrl, clientId: CLIENT.id, clientSecret: CLIENT.secret, scope: SCOPE },
    caCertPath: pki.caCertPath,
    certPath: pki.certPath,
    keyPath: pki.keyPath,
  }
  return {
    info,
    oauth,
    dovecot,
    issueTokens: (email) => oauth.issueTokens({ clientId: CLIENT.id, email, scope: SCOPE }),
    async stop() {
      await dovecot.stop().catch(() => {})
      await oauth.stop().catch(() => {})
    },
  }
}
