/**
 * Where deskmail may send a client secret or open a mail connection.
 *
 * An admin-typed Token Url receives the client secret and every refresh token, and a mail host
 * receives the access token: both are server-side requests chosen by a user, so they get the
 * server-side request forgery rules of RFC 9700 and OWASP ASVS 5.0 V10: https only (plain http
 * for a loopback host in development, and only when that host is explicitly allowed), and no
 * private, loopback, link-local, unique-local, CGNAT, unspecified, multicast or reserved address
 * unless the operator lists the host in `DESKMAIL_ALLOWED_PRIVATE_HOSTS`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.1 (redirect URI and endpoint handling)
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-3.2 (token endpoint: TLS required, no fragment)
 * @see https://www.rfc-editor.org/rfc/rfc6890 (special-purpose address registries)
 */
import { promises as dns } from 'node:dns'
import ipaddr from 'ipaddr.js'
import { AppError } from '../shared/errors.ts'

/** The environment variable that lists hosts, addresses and CIDR ranges exempt from the policy. */
export const ALLOWED_PRIVATE_HOSTS_ENV = 'DESKMAIL_ALLOWED_PRIVATE_HOSTS'

/** Stable error codes raised by this module. */
export const ENDPOINT_ERROR_CODES = {
  notHttps: 'endpoint_not_https',
  privateAddress: 'endpoint_private_address',
  invalidUrl: 'endpoint_invalid_url',
  hostUnresolvable: 'host_unresolvable',
  allowListInvalid: 'allowed_private_hosts_invalid',
} as const

export type EndpointPurpose = 'token' | 'authorization' | 'revocation'

/** A resolver with the shape of `dns.promises.lookup(host, { all: true })`; injectable for tests. */
export type LookupFunction = (hostname: string) => Promise<Array<{ address: string; family: number }>>

export interface HostPolicyOptions {
  /** Host names, IP addresses or CIDR ranges (as returned by {@link parseAllowedPrivateHosts}). */
  allowedPrivateHosts: readonly string[]
  /** Defaults to `dns.promises.lookup(host, { all: true, verbatim: true })`. */
  lookup?: LookupFunction
}

export interface EndpointPolicyOptions extends HostPolicyOptions {
  purpose: EndpointPurpose
}

type Ip = ipaddr.IPv4 | ipaddr.IPv6

const PURPOSE_LABEL: Record<EndpointPurpose | 'mail', string> = {
  token: 'Token Url',
  authorization: 'Authorization Url',
  revocation: 'Revocation Url',
  mail: 'mail server',
}

// RFC 1123 section 2.1 host names (labels of letters, digits and hyphens); an underscore is
// tolerated because some internal DNS zones use it.
const LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?'
const HOSTNAME = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`)

const defaultLookup: LookupFunction = (hostname) => dns.lookup(hostname, { all: true, verbatim: true })

/**
 * Parses `DESKMAIL_ALLOWED_PRIVATE_HOSTS`: entries separated by commas or whitespace, each a host
 * name (`mail.internal`), an IP address (`10.1.2.3`, `::1`, `[::1]`) or a CIDR range
 * (`10.0.0.0/8`, `fd00::/8`). Entries are normalized (lower case, no brackets, no trailing dot).
 * A malformed entry fails loudly at startup rather than silently allowing nothing.
 */
export function parseAllowedPrivateHosts(envValue?: string): string[] {
  if (!envValue) return []
  const entries: string[] = []
  for (const raw of envValue.split(/[\s,]+/)) {
    const entry = normalizeHost(raw)
    if (!entry) continue
    if (entry.includes('/')) {
      if (!ipaddr.isValidCIDR(entry)) throw invalidAllowListEntry(raw)
      const [address, bits] = ipaddr.parseCIDR(entry)
      entries.push(`${address.toString()}/${bits}`)
    } else if (isIpLiteral(entry)) {
      entries.push(normalizeIp(ipaddr.parse(entry)).toString())
    } else if (HOSTNAME.test(entry)) {
      entries.push(entry)
    } else {
      throw invalidAllowListEntry(raw)
    }
  }
  return [...new Set(entries)]
}

function invalidAllowListEntry(raw: string): AppError {
  return new AppError(
    ENDPOINT_ERROR_CODES.allowListInvalid,
    `${ALLOWED_PRIVATE_HOSTS_ENV} contains "${raw}", which is neither a host name, an IP address nor a CIDR range`,
    { details: { entry: raw, env: ALLOWED_PRIVATE_HOSTS_ENV } },
  )
}

/**
 * Parses an OAuth endpoint URL without any network access: absolute `https:` or `http:` URL,
 * no user info (it would leak into logs and is not how OAuth clients authenticate), no fragment
 * (RFC 6749 sections 3.1 and 3.2: "The endpoint URI MUST NOT include a fragment component").
 * Scheme and address rules are applied by {@link checkEndpointUrl}.
 */
export function parseEndpointUrl(url: string, purpose: EndpointPurpose): URL {
  const label = PURPOSE_LABEL[purpose]
  const text = url.trim()
  if (!URL.canParse(text)) {
    throw new AppError(ENDPOINT_ERROR_CODES.invalidUrl, `The ${label} is not an absolute URL`, {
      details: { purpose },
    })
  }
  const parsed = new URL(text)
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new AppError(ENDPOINT_ERROR_CODES.invalidUrl, `The ${label} must start with https://`, {
      details: { purpose, scheme: parsed.protocol },
    })
  }
  if (parsed.username || parsed.password) {
    throw new AppError(
      ENDPOINT_ERROR_CODES.invalidUrl,
      `The ${label} must not contain a user name or password`,
      { details: { purpose, host: parsed.hostname } },
    )
  }
  if (parsed.hash || text.includes('#')) {
    throw new AppError(ENDPOINT_ERROR_CODES.invalidUrl, `The ${label} must not contain a fragment (#...)`, {
      details: { purpose, host: parsed.hostname },
    })
  }
  return parsed
}

/**
 * Checks an OAuth endpoint URL before deskmail stores it or sends anything to it.
 *
 * - `https:` always; `http:` only when the host is a loopback host (127.0.0.0/8, ::1, or a name
 *   resolving only to those) that is listed in `allowedPrivateHosts`: development against a
 *   local stand-in, never a secret in clear text over a network.
 * - Every address the host resolves to must be public unicast, unless the host name or that
 *   address is allowed. IPv4-mapped, NAT64 (RFC 6052) and 6to4 IPv6 addresses are judged by the
 *   IPv4 address they carry.
 *
 * @returns the parsed URL.
 * @throws AppError `endpoint_invalid_url`, `endpoint_not_https`, `endpoint_private_address`,
 *   `host_unresolvable` (transient: DNS can recover).
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-3.2 "MUST require the use of TLS"
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-2.6 (client authentication secrets)
 */
export async function checkEndpointUrl(url: string, options: EndpointPolicyOptions): Promise<URL> {
  const parsed = parseEndpointUrl(url, options.purpose)
  const label = PURPOSE_LABEL[options.purpose]
  const inspection = await inspectHost(parsed.hostname, options, options.purpose).catch((err) => {
    // Plain http to a host that does not even resolve: the scheme is the problem the admin must fix.
    if (parsed.protocol === 'http:' && err?.code === ENDPOINT_ERROR_CODES.hostUnresolvable) {
      throw new AppError(ENDPOINT_ERROR_CODES.notHttps, `The ${label} must use https:// (it receives the client secret)`, {
        details: { purpose: options.purpose, host: parsed.hostname, env: ALLOWED_PRIVATE_HOSTS_ENV },
      })
    }
    throw err
  })
  if (parsed.protocol === 'http:') {
    if (!inspection.loopback || !inspection.explicitlyAllowed) {
      throw new AppError(
        ENDPOINT_ERROR_CODES.notHttps,
        inspection.loopback
          ? `The ${label} uses plain http; that is accepted only for a loopback host listed in ${ALLOWED_PRIVATE_HOSTS_ENV}`
          : `The ${label} must use https:// (it receives the client secret)`,
        { details: { purpose: options.purpose, host: parsed.hostname, env: ALLOWED_PRIVATE_HOSTS_ENV } },
      )
    }
  }
  throwIfRefused(inspection, options.purpose)
  return parsed
}

/**
 * Checks an admin-typed IMAP, POP3 or SMTP host: every address it resolves to must be public
 * unicast unless the host or the address is allowed (the access token is sent to it).
 *
 * @throws AppError `endpoint_invalid_url` (not a host name or address), `endpoint_private_address`,
 *   `host_unresolvable`.
 */
export async function checkMailHost(host: string, options: HostPolicyOptions): Promise<void> {
  throwIfRefused(await inspectHost(host, options, 'mail'), 'mail')
}

/**
 * Checks addresses already resolved for `hostname` (for a connect-time `lookup` hook, so that a
 * DNS answer that changed since {@link checkEndpointUrl} cannot redirect the connection).
 *
 * @throws AppError `endpoint_private_address`
 */
export function assertResolvedAddressesAllowed(
  hostname: string,
  addresses: ReadonlyArray<{ address: string }>,
  options: Pick<HostPolicyOptions, 'allowedPrivateHosts'> & { purpose: EndpointPurpose | 'mail' },
): void {
  const allow = compileAllowList(options.allowedPrivateHosts)
  const name = normalizeHost(hostname)
  const parsed = addresses.map((entry) => normalizeIp(ipaddr.parse(entry.address)))
  throwIfRefused(judge(name, parsed, allow), options.purpose)
}

/** The IANA special-purpose range an address belongs to (`unicast` for ordinary public addresses). */
export function addressRange(address: string): string {
  return effectiveRange(normalizeIp(ipaddr.parse(address)))
}

interface HostInspection {
  host: string
  /** Addresses that are not public unicast and not allowed. */
  refused: Array<{ address: string; range: string }>
  loopback: boolean
  explicitlyAllowed: boolean
}

async function inspectHost(
  host: string,
  options: HostPolicyOptions,
  purpose: EndpointPurpose | 'mail',
): Promise<HostInspection> {
  const name = normalizeHost(host)
  const label = PURPOSE_LABEL[purpose]
  const allow = compileAllowList(options.allowedPrivateHosts)
  if (!name) {
    throw new AppError(ENDPOINT_ERROR_CODES.invalidUrl, `The ${label} host is empty`, {
      details: { purpose },
    })
  }
  if (isIpLiteral(name)) return judge(name, [normalizeIp(ipaddr.parse(name))], allow)
  if (!HOSTNAME.test(name)) {
    throw new AppError(ENDPOINT_ERROR_CODES.invalidUrl, `"${host}" is not a valid host name`, {
      details: { purpose, host },
    })
  }
  let resolved: Array<{ address: string; family: number }>
  try {
    resolved = await (options.lookup ?? defaultLookup)(name)
  } catch (cause) {
    throw unresolvable(name, purpose, cause)
  }
  if (resolved.length === 0) throw unresolvable(name, purpose, undefined)
  return judge(
    name,
    resolved.map((entry) => normalizeIp(ipaddr.parse(entry.address))),
    allow,
  )
}

function unresolvable(host: string, purpose: EndpointPurpose | 'mail', cause: unknown): AppError {
  const code = (cause as { code?: unknown } | undefined)?.code
  return new AppError(
    ENDPOINT_ERROR_CODES.hostUnresolvable,
    `The ${PURPOSE_LABEL[purpose]} host "${host}" could not be resolved`,
    {
      transient: true,
      cause,
      details: { host, purpose, reason: typeof code === 'string' ? code : undefined },
    },
  )
}

function judge(host: string, addresses: Ip[], allow: AllowList): HostInspection {
  const nameAllowed = allow.names.has(host)
  const refused: HostInspection['refused'] = []
  let loopback = addresses.length > 0
  let everyAddressAllowed = addresses.length > 0
  for (const address of addresses) {
    const range = effectiveRange(address)
    const addressAllowed = allow.matches(address)
    if (range !== 'loopback') loopback = false
    if (!addressAllowed) everyAddressAllowed = false
    if (range !== 'unicast' && !nameAllowed && !addressAllowed) {
      refused.push({ address: address.toString(), range })
    }
  }
  return { host, refused, loopback, explicitlyAllowed: nameAllowed || everyAddressAllowed }
}

function throwIfRefused(inspection: HostInspection, purpose: EndpointPurpose | 'mail'): void {
  const first = inspection.refused[0]
  if (!first) return
  const { host } = inspection
  const where = first.address === host ? `"${host}"` : `"${host}" (${first.address})`
  throw new AppError(
    ENDPOINT_ERROR_CODES.privateAddress,
    `The ${PURPOSE_LABEL[purpose]} host ${where} is a ${describeRange(first.range)} address; ` +
      `deskmail refuses it unless the host is listed in ${ALLOWED_PRIVATE_HOSTS_ENV}`,
    {
      details: {
        host,
        address: first.address,
        range: first.range,
        purpose,
        env: ALLOWED_PRIVATE_HOSTS_ENV,
      },
    },
  )
}

function describeRange(range: string): string {
  switch (range) {
    case 'private':
      return 'private (RFC 1918)'
    case 'loopback':
      return 'loopback'
    case 'linkLocal':
      return 'link-local'
    case 'uniqueLocal':
      return 'unique-local (fc00::/7)'
    case 'carrierGradeNat':
      return 'carrier-grade NAT (100.64.0.0/10)'
    case 'unspecified':
      return 'unspecified'
    case 'multicast':
    case 'broadcast':
      return 'multicast or broadcast'
    default:
      return `non-public (${range})`
  }
}

/**
 * The range that decides: addresses that carry an IPv4 address (NAT64 per RFC 6052, 6to4 per
 * RFC 3056) are judged by that IPv4 address, so `64:ff9b::7f00:1` is loopback while NAT64 access
 * to a public server (IPv6-only networks with DNS64) keeps working.
 */
function effectiveRange(address: Ip): string {
  if (address.kind() === 'ipv4') return address.range()
  const v6 = address as ipaddr.IPv6
  const range = v6.range()
  const bytes = v6.toByteArray()
  if (range === 'rfc6052') return ipaddr.fromByteArray(bytes.slice(12, 16)).range()
  if (range === '6to4') return ipaddr.fromByteArray(bytes.slice(2, 6)).range()
  return range
}

/** IPv4-mapped (::ffff:a.b.c.d) and RFC 6145 translated addresses are IPv4 addresses. */
function normalizeIp(address: Ip): Ip {
  if (address.kind() === 'ipv6') {
    const v6 = address as ipaddr.IPv6
    const range = v6.range()
    if (range === 'ipv4Mapped' || range === 'rfc6145') {
      return ipaddr.fromByteArray(v6.toByteArray().slice(12, 16))
    }
  }
  return address
}

function normalizeHost(host: string): string {
  let value = host.trim().toLowerCase()
  if (value.startsWith('[') && value.endsWith(']')) value = value.slice(1, -1)
  if (value.endsWith('.')) value = value.slice(0, -1)
  return value
}

function isIpLiteral(value: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(value) || ipaddr.IPv6.isValid(value) || ipaddr.IPv4.isValid(value)
}

interface AllowList {
  names: Set<string>
  matches(address: Ip): boolean
}

function compileAllowList(entries: readonly string[]): AllowList {
  const names = new Set<string>()
  const ranges: Array<[Ip, number]> = []
  for (const raw of entries) {
    const entry = normalizeHost(raw)
    if (!entry) continue
    if (entry.includes('/') && ipaddr.isValidCIDR(entry)) {
      const [address, bits] = ipaddr.parseCIDR(entry)
      const normalized = normalizeIp(address)
      // An IPv4-mapped CIDR (::ffff:10.0.0.0/104) becomes its IPv4 range.
      ranges.push([normalized, normalized.kind() === address.kind() ? bits : Math.max(0, bits - 96)])
    } else if (isIpLiteral(entry)) {
      const address = normalizeIp(ipaddr.parse(entry))
      ranges.push([address, address.kind() === 'ipv4' ? 32 : 128])
    } else {
      names.add(entry)
    }
  }
  return {
    names,
    matches(address) {
      return ranges.some(([base, bits]) => base.kind() === address.kind() && address.match(base, bits))
    },
  }
}
