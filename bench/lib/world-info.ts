/** What a benchmark child needs to know about the servers the orchestrator runs (plain data, sent over IPC). */
export interface WorldInfo {
  imap: {
    host: '127.0.0.1'
    /** IMAP over TLS (port 993's role): what the product and the baselines use. */
    tlsPort: number
    /** Plain IMAP (for the counting proxy, which terminates TLS itself). */
    plainPort: number
  }
  oauth: {
    authorizationUrl: string
    tokenUrl: string
    clientId: string
    clientSecret: string
    scope: string
  }
  /** PEM of the private CA the test servers' certificates chain to. */
  caCertPath: string
  certPath: string
  keyPath: string
}
