import type { MailboxAddress } from './types.ts'

/**
 * One mailbox as an RFC 5322 `name-addr` / `addr-spec`: the display name quoted when it holds
 * anything but atext and spaces (RFC 5322 3.2.3, 3.4). Names stay UTF-8 here; whoever sends
 * mail encodes them (RFC 2047) at that point.
 */
export function formatAddress(mailbox: MailboxAddress): string {
  const name = mailbox.name.replace(/[\r\n\p{Cc}]+/gu, ' ').trim()
  if (name === '') return mailbox.address
  const plain = /^[\p{L}\p{N}!#$%&'*+\-/=?^_`{|}~ ]+$/u.test(name)
  return `${plain ? name : `"${name.replace(/["\\]/g, '\\$&')}"`} <${mailbox.address}>`
}

/** An address list for a `To` / `Cc` style column, '' when empty. */
export function formatAddressList(list: MailboxAddress[]): string {
  return list.map(formatAddress).join(', ')
}
