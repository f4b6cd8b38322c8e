/**
 * Headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core, confined to loopback:
 * the flags make every other host unresolvable and unroutable, and a route handler aborts any
 * request to a non-loopback host (oidc-provider's pages import a web font). See HARNESS.md.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { chromium } from 'playwright-core'
import type { BrowserContext, Page } from 'playwright-core'

export interface TestBrowser {
  context: BrowserContext
  page: Page
  close(): Promise<void>
}

const CHROMIUM_PATH = '/usr/bin/chromium'

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost',
  '--proxy-server=http://127.0.0.1:9',
  '--proxy-bypass-list=127.0.0.1;localhost',
]

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]'])

export async function launchBrowser(): Promise<TestBrowser> {
  // A fresh profile each time; Playwright refuses --user-data-dir in args, hence the persistent context.
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'deskmail-chromium-'))
  let context: BrowserContext
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
    })
  } catch (err) {
    rmSync(userDataDir, { recursive: true, force: true })
    throw err
  }
  await context.route('**/*', (route) => {
    const { protocol, hostname } = new URL(route.request().url())
    const local = (protocol === 'http:' || protocol === 'https:') && LOOPBACK_HOSTS.has(hostname)
    return local ? route.continue() : route.abort('blockedbyclient')
  })
  const page = context.pages()[0] ?? (await context.newPage())
  return {
    context,
    page,
    close: async () => {
      await context.close()
      rmSync(userDataDir, { recursive: true, force: true })
    },
  }
}
