/** Requests (tickets): their conversation, contacts, attachments and the Email Audit. */
export { RequestService } from './service.ts'
export type { MessageBody, RawMailDownload, RequestServiceDeps } from './service.ts'
export { RequestRepository } from './repository.ts'
export type { ReservableTable } from './repository.ts'
export { attachmentHeaders, attachmentUrl, contentDisposition, isInlineImageType } from './downloads.ts'
export type { DownloadHeaders } from './downloads.ts'
export { formatAddress, formatAddressList } from './addresses.ts'
export * from './types.ts'
