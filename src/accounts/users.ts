import crypto from 'node:crypto'
import type { Db } from '../storage/database.ts'
import type { User } from '../storage/schema.ts'
import { AppError } from '../shared/errors.ts'
import { dummyPasswordHash, hashPassword, verifyPassword } from './passwords.ts'

const SETUP_CODE_KEY = 'setup_code_hash'

export class UserService {
  constructor(private readonly db: Db) {}

  async count(): Promise<number> {
    const row = await this.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
    return Number(row.n)
  }

  async create(input: { email: string; name?: string; password: string; role: 'admin' | 'agent' }): Promise<User> {
    const email = input.email.trim().toLowerCase()
    if (!/^[^\s@]+@[^\s@]+$/.test(email)) throw new AppError('user_email_invalid', 'Enter a valid email address.')
    if (input.password.length < 10) throw new AppError('user_password_weak', 'The password must have at least 10 characters.')
    const existing = await this.db.selectFrom('users').select('id').where('email', '=', email).executeTakeFirst()
    if (existing) throw new AppError('user_exists', 'A user with this email address exists already.')
    return this.db
      .insertInto('users')
      .values({
        email,
        name: input.name?.trim() || email,
        password_hash: await hashPassword(input.password),
        role: input.role,
        created_at: Date.now(),
      })
      .returningAll()
      .executeTakeFirstOrThrow()
  }

  async byId(id: number): Promise<User | undefined> {
    return this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()
  }

  /** Returns the user when the email and password match; undefined otherwise, in constant-ish time. */
  async authenticate(email: string, password: string): Promise<User | undefined> {
    const user = await this.db.selectFrom('users').selectAll().where('email', '=', email.trim().toLowerCase()).executeTakeFirst()
    const ok = await verifyPassword(password, user?.password_hash ?? (await dummyPasswordHash))
    if (!user || !ok) return undefined
    await this.db.updateTable('users').set({ last_login_at: Date.now() }).where('id', '=', user.id).execute()
    return user
  }

  /**
   * On a database with no user: create the admin from the environment when given, otherwise make
   * a one-time setup code (returned, to be logged once) that the setup page asks for.
   */
  async bootstrap(admin: { email?: string; password?: string }): Promise<{ created?: string; setupCode?: string }> {
    if ((await this.count()) > 0) return {}
    if (admin.email && admin.password) {
      await this.create({ email: admin.email, password: admin.password, role: 'admin', name: 'Administrator' })
      return { created: admin.email }
    }
    const code = crypto.randomBytes(9).toString('base64url')
    await this.db.deleteFrom('settings').where('key', '=', SETUP_CODE_KEY).execute()
    await this.db.insertInto('settings').values({ key: SETUP_CODE_KEY, value: sha256(code) }).execute()
    return { setupCode: code }
  }

  async needsSetup(): Promise<boolean> {
    return (await this.count()) === 0
  }

  /** The setup page: valid only while no user exists, and only with the code from the log. */
  async completeSetup(input: { code: string; email: string; password: string }): Promise<User> {
    const row = await this.db.selectFrom('settings').select('value').where('key', '=', SETUP_CODE_KEY).executeTakeFirst()
    const given = Buffer.from(sha256(input.code.trim()))
    if (!row || (await this.count()) > 0 || !crypto.timingSafeEqual(given, Buffer.from(row.value))) {
      throw new AppError('setup_code_invalid', 'The setup code is not valid. It is printed in the deskmail log at start.')
    }
    const user = await this.create({ email: input.email, password: input.password, role: 'admin', name: 'Administrator' })
    await this.db.deleteFrom('settings').where('key', '=', SETUP_CODE_KEY).execute()
    return user
  }
}

function sha256(s: string): string {
  return crypto.createHash('sha256').update(s).digest('hex')
}
