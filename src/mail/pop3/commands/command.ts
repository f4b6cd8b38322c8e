import type { Pop3Connection, Pop3State } from '../connection.ts'

/**
 * One POP3 command: the states RFC 1939 (or its extension) allows it in, and how it talks to the
 * server. The client checks the state and serialises commands; `run` only speaks the protocol.
 */
export interface Pop3Command<A extends unknown[], R> {
  /** The verb as sent, for errors. */
  readonly name: string
  readonly states: readonly Pop3State[]
  run(conn: Pop3Connection, ...args: A): Promise<R>
}
