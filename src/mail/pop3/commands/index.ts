/**
 * The POP3 commands, one file each, registered by name (the imapflow shape). Pop3Client runs them
 * through this map, which is where the state check and serialisation happen once for all.
 */
import { authXOAuth2 } from './auth-xoauth2.ts'
import { capa } from './capa.ts'
import type { Pop3Command } from './command.ts'
import { dele } from './dele.ts'
import { list } from './list.ts'
import { noop } from './noop.ts'
import { quit } from './quit.ts'
import { retr } from './retr.ts'
import { stat } from './stat.ts'
import { stls } from './stls.ts'
import { uidl } from './uidl.ts'
import { userPass } from './user-pass.ts'

export const commands = {
  CAPA: capa,
  STLS: stls,
  AUTH_XOAUTH2: authXOAuth2,
  USER_PASS: userPass,
  STAT: stat,
  UIDL: uidl,
  LIST: list,
  RETR: retr,
  DELE: dele,
  NOOP: noop,
  QUIT: quit,
} as const

export type Pop3CommandMap = typeof commands
export type Pop3CommandName = keyof Pop3CommandMap
export type Pop3CommandArgs<K extends Pop3CommandName> =
  Pop3CommandMap[K] extends Pop3Command<infer A, unknown> ? A : never
export type Pop3CommandResult<K extends Pop3CommandName> =
  Pop3CommandMap[K] extends Pop3Command<unknown[], infer R> ? R : never
export type { Pop3AuthStyle } from './auth-xoauth2.ts'
