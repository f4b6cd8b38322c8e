import type { WebModule } from './app.ts'

/** The feature modules of the portal and API, in navigation order. */
export const webModules: WebModule[] = []
