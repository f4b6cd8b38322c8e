import crypto from 'node:crypto'
import { AppError } from './errors.ts'

/**
 * Encryption at rest for tokens, client secrets and passwords (DESIGN.md, Credentials).
 *
 * Envelope encryption with AES-256-GCM: every value gets its own random data key; the data key is
 * wrapped by the master key of a given version (kept outside the database); the associated data
 * binds the ciphertext to its row and column (e.g. `credentials:12:refresh_token`), so a value
 * copied into another row fails to open. Old master key versions stay in the keyring for reading
 * while new values use the current one.
 *
 * Sealed format: `dm1.<keyVersion>.<b64url iv|tag|wrappedKey>.<b64url iv|tag|ciphertext>`
 */
export interface Keyring {
  current: number
  keys: Map<number, Buffer>
}

const IV = 12
const TAG = 16

export class SecretBox {
  readonly #keyring: Keyring

  constructor(keyring: Keyring) {
    if (!keyring.keys.has(keyring.current)) throw new AppError('secret_key_invalid', 'the current key version is missing')
    this.#keyring = keyring
  }

  seal(plaintext: string, aad: string): string {
    const dataKey = crypto.randomBytes(32)
    const wrapped = gcm(this.#keyring.keys.get(this.#keyring.current)!, dataKey, `dm1:key:${aad}`)
    const body = gcm(dataKey, Buffer.from(plaintext, 'utf8'), aad)
    dataKey.fill(0)
    return `dm1.${this.#keyring.current}.${wrapped.toString('base64url')}.${body.toString('base64url')}`
  }

  open(sealed: string, aad: string): string {
    const parts = sealed.split('.')
    if (parts.length !== 4 || parts[0] !== 'dm1') throw new AppError('secret_corrupt', 'stored secret has an unknown format')
    const version = Number(parts[1])
    const master = this.#keyring.keys.get(version)
    if (!master) throw new AppError('secret_key_missing', `stored secret needs master key version ${version}, which is not configured`)
    try {
      const dataKey = ungcm(master, Buffer.from(parts[2]!, 'base64url'), `dm1:key:${aad}`)
      return ungcm(dataKey, Buffer.from(parts[3]!, 'base64url'), aad).toString('utf8')
    } catch (err) {
      throw new AppError('secret_corrupt', 'stored secret cannot be decrypted (wrong key or moved between rows)', { cause: err })
    }
  }

  /** Null-friendly helpers for optional columns. */
  sealOptional(plaintext: string | null | undefined, aad: string): string | null {
    return plaintext == null || plaintext === '' ? null : this.seal(plaintext, aad)
  }

  openOptional(sealed: string | null | undefined, aad: string): string | null {
    return sealed == null ? null : this.open(sealed, aad)
  }
}

function gcm(key: Buffer, plaintext: Buffer, aad: string): Buffer {
  const iv = crypto.randomBytes(IV)
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(Buffer.from(aad, 'utf8'))
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return Buffer.concat([iv, cipher.getAuthTag(), ct])
}

function ungcm(key: Buffer, data: Buffer, aad: string): Buffer {
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, data.subarray(0, IV))
  decipher.setAAD(Buffer.from(aad, 'utf8'))
  decipher.setAuthTag(data.subarray(IV, IV + TAG))
  return Buffer.concat([decipher.update(data.subarray(IV + TAG)), decipher.final()])
}

/**
 * Parses `DESKMAIL_SECRET_KEY`: either one base64 key of 32 bytes (version 1), or a keyring
 * `3:<base64>,2:<base64>` whose first entry is the current version.
 */
export function parseKeyring(value: string): Keyring {
  const entries = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  if (entries.length === 0) throw new AppError('secret_key_invalid', 'DESKMAIL_SECRET_KEY is empty')
  const keys = new Map<number, Buffer>()
  let current = 0
  for (const [i, entry] of entries.entries()) {
    const m = /^(?:(\d+):)?([A-Za-z0-9+/_-]+={0,2})$/.exec(entry)
    const version = m ? Number(m[1] ?? 1) : NaN
    const key = m ? Buffer.from(m[2]!, m[2]!.includes('-') || m[2]!.includes('_') ? 'base64url' : 'base64') : Buffer.alloc(0)
    if (!m || key.length !== 32 || !(version > 0) || keys.has(version)) {
      throw new AppError(
        'secret_key_invalid',
        'DESKMAIL_SECRET_KEY must be a base64-encoded 32-byte key (e.g. `openssl rand -base64 32`) or a list `2:<key>,1:<key>` with distinct versions',
      )
    }
    keys.set(version, key)
    if (i === 0) current = version
  }
  return { current, keys }
}

export function generateKeyringValue(): string {
  return `1:${crypto.randomBytes(32).toString('base64')}`
}
