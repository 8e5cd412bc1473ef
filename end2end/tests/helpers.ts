import { expect, type APIRequestContext, type Browser, type BrowserContext, type Page } from '@playwright/test';
import { createHmac } from 'node:crypto';

export const ADMIN_EMAIL = 'admin@e2e.test';
export const ADMIN_PASSWORD = 'e2e fixture passphrase, long enough';

/** Collects console errors, warnings (hydration mismatches are logged as such) and page errors. */
export function watchConsole(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') {
      problems.push(`${msg.type()}: ${msg.text()}`);
    }
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  return problems;
}

export async function waitForHydration(page: Page): Promise<void> {
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
}

/** Signs in through the sign-in page and waits to land on `landing`. */
export async function signIn(page: Page, email = ADMIN_EMAIL, password = ADMIN_PASSWORD, path = '/'): Promise<void> {
  await page.goto(path);
  await expect(page).toHaveURL(/\/sign-in/);
  await waitForHydration(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('signed-in-as')).toBeVisible();
}

/** Mints a token in the Integrations panel of `tenant` (owner: `owner` label, or the default) and returns it. */
export async function mintToken(page: Page, tenant: string, name: string, owner?: string): Promise<string> {
  await page.goto(`/t/${tenant}/integrations`);
  await waitForHydration(page);
  await page.getByLabel('Name').fill(name);
  if (owner) await page.getByLabel('Owner', { exact: true }).selectOption({ label: owner });
  await page.getByLabel('Lifetime (days)').fill('7');
  await page.getByRole('button', { name: 'Mint token' }).click();
  const shown = page.getByTestId('minted-token');
  await expect(shown).toBeVisible();
  return (await shown.textContent())!.trim();
}

/** Something to open on every detail page: a token (demo), an API client (demo) and an audit
 * event. Returns the token's id and the client's and the event's paths. */
export async function seedDetailPages(page: Page, label: string): Promise<{ tokenId: string; clientPath: string; eventPath: string }> {
  const token = await mintToken(page, 'demo', `e2e ${label} ${Date.now()}`);
  await page.goto('/t/demo/agent-ops');
  await waitForHydration(page);
  const clientName = `e2e-${label}-${Date.now()}`;
  await page.getByLabel('Name').fill(clientName);
  await page.getByRole('button', { name: 'Create client' }).click();
  const clientLink = page.getByTestId('clients').getByRole('link', { name: clientName });
  await expect(clientLink).toBeVisible();
  const clientPath = (await clientLink.getAttribute('href'))!;
  await page.goto('/audit');
  const eventLink = page.getByTestId('audit-table').locator('tbody a').first();
  await expect(eventLink).toBeVisible();
  const eventPath = (await eventLink.getAttribute('href'))!;
  await waitForHydration(page);
  return { tokenId: token.split('.')[1], clientPath, eventPath };
}

/** A call to the agent API's `whoami` with `token`: its status, refusal code and Retry-After. */
export async function whoami(request: APIRequestContext, token: string) {
  const res = await request.get('/agent/v1/whoami', { headers: { Authorization: `Bearer ${token}` } });
  const body = await res.json();
  return { status: res.status(), code: body.error?.code as string | undefined, retryAfter: res.headers()['retry-after'] };
}

/** Reloads until the token's history shows `text` (gateway events are written each second). */
export async function historyShows(page: Page, text: string): Promise<void> {
  await expect(async () => {
    await page.reload();
    await expect(page.getByTestId('token-history')).toContainText(text, { timeout: 1_000 });
  }).toPass({ timeout: 15_000 });
}

/** The RFC 6238 code (SHA-1, 6 digits, 30 s) an authenticator app shows for `base32`, `steps`
 * steps of 30 s from now: each code is accepted once, so a test that needs several within
 * one step uses the one before (-1) and after (+1), which the server also accepts. */
export function totpCode(base32: string, steps = 0): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32.replace(/=+$/, '').toUpperCase()) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error(`not base32: ${c}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const key = Buffer.from(bits.match(/.{8}/g)!.map((b) => parseInt(b, 2)));
  const counter = Math.floor(Date.now() / 1000 / 30) + steps;
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', key).update(msg).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return n.toString().padStart(6, '0');
}

/**
 * The fixture admin (signed in on `page`) adds a viewer to act on and an admin for the test;
 * the new admin signs in, in a browser context of its own, with the one-time password, and
 * replaces it with `password`. `prepare` runs on the new page before it signs in (a virtual
 * authenticator, say). Returns the new admin's context and page, and both emails.
 */
export async function newAdmin(
  page: Page,
  browser: Browser,
  label: string,
  password: string,
  prepare?: (context: BrowserContext, page: Page) => Promise<void>,
): Promise<{ context: BrowserContext; admin: Page; email: string; target: string }> {
  await page.goto('/staff');
  await waitForHydration(page);
  const stamp = Date.now();
  const email = `${label}-admin-${stamp}@e2e.test`;
  const target = `${label}-target-${stamp}@e2e.test`;
  // The admin last: the page reveals the last one-time password.
  for (const [who, role] of [[target, 'viewer'], [email, 'admin']]) {
    await page.getByLabel('Email').fill(who);
    await page.getByLabel('Name').fill(`${label} ${role}`);
    await page.getByLabel('Role', { exact: true }).selectOption(role);
    await page.getByRole('button', { name: 'Add' }).click();
    await expect(page.getByTestId('staff-table')).toContainText(who);
  }
  const oneTime = (await page.getByTestId('one-time-password').textContent())!.trim();

  const context = await browser.newContext();
  const admin = await context.newPage();
  if (prepare) await prepare(context, admin);
  await signIn(admin, email, oneTime);
  await waitForHydration(admin);
  await admin.getByLabel('Current password').fill(oneTime);
  await admin.getByLabel('New password', { exact: true }).fill(password);
  await admin.getByLabel('New password again').fill(password);
  await admin.getByRole('button', { name: 'Change password' }).click();
  await expect(admin.getByRole('navigation', { name: 'Panels' })).toBeVisible();
  return { context, admin, email, target };
}
