import type { Page } from 'playwright-core'
import { ADMIN } from './app.ts'

/** Signs in to the portal through its sign-in page, as a person would. */
export async function signInInBrowser(page: Page, appUrl: string): Promise<void> {
  await page.goto(`${appUrl}/login`)
  await page.getByLabel('Email', { exact: true }).fill(ADMIN.email)
  await page.getByLabel('Password', { exact: true }).fill(ADMIN.password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL(`${appUrl}/requests`)
}

/**
 * Goes through the stand-in provider's pages (oidc-provider devInteractions): the login page when
 * the provider has no session of its own, then the consent page, until the browser is back at
 * deskmail's callback.
 */
export async function consentAtProvider(page: Page, issuer: string, appUrl: string, login: string): Promise<void> {
  await page.waitForURL((u) => u.toString().startsWith(issuer))
  for (let step = 0; step < 4 && page.url().startsWith(issuer); step++) {
    if (await page.locator('input[name="login"]').count()) {
      await page.locator('input[name="login"]').fill(login)
      await page.locator('input[name="password"]').fill('any password')
    }
    const here = page.url()
    await page.locator('button[type="submit"]').first().click()
    await page.waitForURL((u) => u.toString() !== here)
  }
  await page.waitForURL((u) => u.toString().startsWith(appUrl))
}
