import type { WebModule } from './app.ts'
import { emailServerRoutes } from './routes/admin/email-servers.ts'
import { oauthCallbackRoutes } from './routes/oauth-callback.ts'
import { emailServersApi } from './routes/api/email-servers.ts'

/** The feature modules of the portal and API, in navigation order. */
export const webModules: WebModule[] = [
  { routes: emailServerRoutes, api: emailServersApi },
  { routes: oauthCallbackRoutes },
]
