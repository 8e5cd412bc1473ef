import { test, expect } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { signIn, waitForHydration, watchConsole, ADMIN_EMAIL, ADMIN_PASSWORD } from './helpers';

// The freeze of high-risk operations and the sessions lists. The suite runs one spec at a
// time (workers: 1), so a platform-wide freeze here cannot refuse another spec's change;
// it is lifted afterwards whatever happens, from the command line.

test.afterEach(() => {
  const binary = process.env.STAFF_CONSOLE_BIN ?? '../target/debug/staff-console';
  try {
    execFileSync(binary, ['freeze', 'lift', '--reason', 'e2e cleanup'], { stdio: 'pipe', env: process.env });
  } catch {
    // No freeze was left on: nothing to lift.
  }
});

test('a freeze refuses adding staff, shows in the top bar of every page, and lifts', async ({ page }) => {
  const problems = watchConsole(page);
  await signIn(page);
  await page.getByRole('link', { name: 'Freeze', exact: true }).click();
  await expect(page).toHaveURL(/\/freeze$/);
  await waitForHydration(page);
  await expect(page.getByTestId('freeze-banner')).toHaveCount(0);
  // A reason is required.
  await page.getByRole('button', { name: 'Freeze high-risk operations' }).click();
  await expect(page.locator('#freeze-reason-error')).toContainText('Say why');
  const reason = `e2e JWKS compromise ${Date.now()}`;
  await page.getByLabel('Reason').fill(reason);
  await page.getByLabel('Lifts by itself after (minutes, optional)').fill('30');
  await page.getByRole('button', { name: 'Freeze high-risk operations' }).click();
  await expect(page.getByTestId('freeze-on')).toContainText(reason);
  // The top bar says so at once, and on the next page too.
  await expect(page.getByTestId('freeze-banner')).toContainText(reason);

  await page.getByRole('link', { name: 'Staff', exact: true }).click();
  await expect(page).toHaveURL(/\/staff$/);
  await waitForHydration(page);
  await expect(page.getByTestId('freeze-banner')).toContainText(reason);
  const email = `frozen-${Date.now()}@e2e.test`;
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Name').fill('Frozen Out');
  await page.getByRole('button', { name: 'Add' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'High-risk operations are frozen' })).toBeVisible();
  await expect(page.getByTestId('staff-table')).not.toContainText(email);

  // Lifting needs a reason and the word.
  await page.getByTestId('freeze-banner').getByRole('link', { name: 'See the freeze' }).click();
  await expect(page).toHaveURL(/\/freeze$/);
  await waitForHydration(page);
  await page.getByLabel('Reason').fill('keys rotated');
  await page.getByLabel('Type lift to confirm').fill('lift');
  await page.getByRole('button', { name: 'Lift the freeze' }).click();
  await expect(page.getByRole('heading', { name: 'No freeze is on' })).toBeVisible();
  await expect(page.getByTestId('freeze-banner')).toHaveCount(0);
  await expect(page.getByTestId('freeze-history')).toContainText(reason);
  await expect(page.getByTestId('freeze-history')).toContainText('keys rotated');
  // The refused answers themselves (422 for the missing reason, 423 for the frozen add).
  expect(problems.filter((p) => !p.includes('422') && !p.includes('423'))).toEqual([]);
});

test('a person ends their other session, and an admin ends someone else’s', async ({ page, browser }) => {
  const problems = watchConsole(page);
  // The same admin, signed in a second time elsewhere.
  const other = await browser.newContext();
  const elsewhere = await other.newPage();
  await signIn(elsewhere, ADMIN_EMAIL, ADMIN_PASSWORD);
  await signIn(page);
  await page.getByRole('link', { name: 'Sessions' }).click();
  await expect(page).toHaveURL(/\/account\/sessions$/);
  await waitForHydration(page);
  const mine = page.getByTestId('my-sessions');
  await expect(mine.getByText('This session')).toHaveCount(1);
  const rows = await mine.locator('tbody tr').count();
  expect(rows).toBeGreaterThanOrEqual(2);
  await page.getByRole('button', { name: 'End all other sessions' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'other session(s) ended' })).toBeVisible();
  await expect(mine.locator('tbody tr')).toHaveCount(1);
  // The other browser is signed out at its next request.
  await elsewhere.goto('/');
  await expect(elsewhere).toHaveURL(/\/sign-in/);

  // Signed in again there: the admin ends that session from the list of everyone's.
  await signIn(elsewhere, ADMIN_EMAIL, ADMIN_PASSWORD);
  await elsewhere.goto('/account/sessions');
  const id = await elsewhere.getByTestId('my-sessions').locator('tbody tr').filter({ hasText: 'This session' }).getAttribute('data-session');
  await page.goto('/staff/sessions');
  await waitForHydration(page);
  const target = page.getByTestId('staff-sessions').locator(`tr[data-session="${id}"]`);
  await expect(target).toBeVisible();
  await target.getByRole('button', { name: 'End', exact: true }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'Say why' })).toBeVisible();
  await target.getByPlaceholder('Reason').fill('e2e: stolen laptop');
  await target.getByRole('button', { name: 'End', exact: true }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Session ended.' })).toBeVisible();
  await expect(target).toHaveCount(0);
  await elsewhere.goto('/');
  await expect(elsewhere).toHaveURL(/\/sign-in/);
  await other.close();
  expect(problems.filter((p) => !p.includes('422'))).toEqual([]);
});
