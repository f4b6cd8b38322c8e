// oidc-provider ships no type declarations and @types/oidc-provider is not installed: this is the
// small surface that test/harness/oauth-server.ts uses. Payloads stay loosely typed on purpose.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'

  export type ProviderPayload = Record<string, any>

  /** A model instance (Grant, AccessToken, RefreshToken...): payload fields plus a few methods. */
  export interface ProviderModel extends ProviderPayload {
    jti: string
    kind: string
    save(): Promise<string>
    destroy(): Promise<void>
  }

  export interface ProviderModelClass {
    new (payload?: ProviderPayload): ProviderModel
    find(id: string, options?: ProviderPayload): Promise<ProviderModel | undefined>
  }

  export interface ProviderKoaContext extends ProviderPayload {
    oidc?: ProviderPayload
  }

  export default class Provider {
    constructor(issuer: string, configuration: ProviderPayload)
    readonly issuer: string
    proxy: boolean
    callback(): (req: IncomingMessage, res: ServerResponse) => void
    use(middleware: (ctx: ProviderKoaContext, next: () => Promise<void>) => Promise<void>): void
    on(event: string, listener: (...args: any[]) => void): void
    readonly Client: { find(id: string): Promise<ProviderModel | undefined> }
    readonly Grant: ProviderModelClass
    readonly AccessToken: ProviderModelClass
    readonly RefreshToken: ProviderModelClass
    readonly ResourceServer: new (identifier: string, info: ProviderPayload) => ProviderPayload
  }

  export const errors: Record<string, new (description?: string, detail?: string) => Error>
}
