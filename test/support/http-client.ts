/**
 * A browser-like HTTP client for portal tests: keeps cookies, does not follow redirects by itself
 * (tests assert them), and finds the CSRF token of the last form it saw.
 */
export class HttpClient {
  private readonly cookies = new Map<string, string>()
  lastHtml = ''

  constructor(readonly baseUrl: string) {}

  async request(method: string, path: string, init: { body?: string | URLSearchParams; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { ...init.headers }
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    const res = await fetch(new URL(path, this.baseUrl), { method, body: init.body, headers, redirect: 'manual' })
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';')
      const i = pair!.indexOf('=')
      const name = pair!.slice(0, i)
      const value = pair!.slice(i + 1)
      if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(c)) this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
    const text = await res.text()
    if ((res.headers.get('content-type') ?? '').includes('text/html')) this.lastHtml = text
    return { status: res.status, headers: res.headers, text, location: res.headers.get('location') ?? undefined }
  }

  get(path: string) {
    return this.request('GET', path)
  }

  /** Follows redirects (303/302) like a browser until a non-redirect answer. */
  async follow(first: Promise<Awaited<ReturnType<HttpClient['request']>>>) {
    let res = await first
    for (let i = 0; i < 10 && res.location && res.status >= 300 && res.status < 400; i++) {
      if (!res.location.startsWith('/') && !res.location.startsWith(this.baseUrl)) return res
      res = await this.get(res.location)
    }
    return res
  }

  csrf(): string {
    const m = /name="_csrf" value="([^"]+)"/.exec(this.lastHtml)
    if (!m) throw new Error('no CSRF token on the last page')
    return m[1]!
  }

  /** Posts a form with the CSRF token of the last page (unless `_csrf` is given). */
  postForm(path: string, fields: Record<string, string>) {
    const body = new URLSearchParams({ _csrf: fields._csrf ?? this.csrf(), ...fields })
    return this.request('POST', path, { body, headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  }

  async signIn(email: string, password: string) {
    await this.get('/login')
    const res = await this.postForm('/login', { email, password })
    if (res.status !== 303) throw new Error(`sign-in failed: ${res.status}`)
    return res
  }
}
