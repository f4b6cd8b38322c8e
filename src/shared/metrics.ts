import client from 'prom-client'

/** One registry per process (tests build several apps in one process, hence not the global one). */
export function createMetrics() {
  const registry = new client.Registry()
  client.collectDefaultMetrics({ register: registry, prefix: 'deskmail_' })
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    new client.Counter({ name: `deskmail_${name}`, help, labelNames, registers: [registry] })
  const gauge = (name: string, help: string, labelNames: string[] = []) =>
    new client.Gauge({ name: `deskmail_${name}`, help, labelNames, registers: [registry] })
  const histogram = (name: string, help: string, buckets: number[], labelNames: string[] = []) =>
    new client.Histogram({ name: `deskmail_${name}`, help, buckets, labelNames, registers: [registry] })
  return {
    registry,
    httpRequests: counter('http_requests_total', 'HTTP requests answered', ['method', 'status']),
    mailIngested: counter('mail_ingested_total', 'Messages received, by outcome', ['outcome']),
    ingestLatency: histogram('ingest_seconds', 'Time from fetch to commit per batch message', [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5]),
    syncs: counter('mailbox_syncs_total', 'Mailbox syncs, by result', ['protocol', 'result']),
    tokenRefreshes: counter('token_refreshes_total', 'Access token refreshes, by result', ['result']),
    outboxSent: counter('outbox_sent_total', 'Outgoing mail, by result', ['result']),
    leaseTakeovers: counter('lease_takeovers_total', 'Mailbox leases taken over from another worker after expiry'),
    mailboxesHeld: gauge('worker_mailboxes_held', 'Mailboxes held by this worker', ['worker']),
    syncLag: gauge('mailbox_sync_lag_seconds', 'Seconds since the last successful sync, per mailbox', ['server']),
  }
}

export type Metrics = ReturnType<typeof createMetrics>
