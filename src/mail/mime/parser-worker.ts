/** Entry module of a parser worker thread (started by parser-pool.ts). */
import { parseMail } from './parse-mail.ts'
import { serveParseRequests } from './parser-worker-protocol.ts'

serveParseRequests(parseMail)
