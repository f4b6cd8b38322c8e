import type { WebModule } from './app.ts'
import { emailServerRoutes } from './routes/admin/email-servers.ts'
import { oauthCallbackRoutes } from './routes/oauth-callback.ts'
import { emailServersApi } from './routes/api/email-servers.ts'
import { workerRoutes } from './routes/admin/workers.ts'
import { replyRoutes } from './routes/replies.ts'
import { repliesApi } from './routes/api/replies.ts'
import { sendTestRoutes } from './routes/admin/send-test.ts'
import { requestRoutes } from './routes/requests.ts'
import { requestsApi } from './routes/api/requests.ts'
import { emailAuditRoutes } from './routes/admin/email-audit.ts'

/** The feature modules of the portal and API, in navigation order. */
export const webModules: WebModule[] = [
  { routes: emailServerRoutes, api: emailServersApi },
  { routes: oauthCallbackRoutes },
  { routes: workerRoutes },
  { routes: replyRoutes, api: repliesApi },
  { routes: sendTestRoutes },
  {
    routes: async (app) => {
      await requestRoutes(app)
      await emailAuditRoutes(app)
    },
    api: requestsApi,
  },
]
