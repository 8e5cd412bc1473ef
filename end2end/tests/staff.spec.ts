import { test, expect, type Page } from '@playwright/test';
import { signIn, waitForHydration, watchConsole } from './helpers';

/** Tries to sign in and expects the one answer every refusal gets. */
async function refusedSignIn(page: Page, email: string, password: string): Promise<void> {
  await page.goto('/sign-in');
  await waitForHydration(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Email or password is incorrect.');
}

test("an admin changes a person's role, resets their password and disables them", async ({ page, browser }) => {
  const problems = watchConsole(page);
  await signIn(page, undefined, undefined, '/staff');
  await expect(page.getByRole('heading', { level: 1, name: 'Staff' })).toBeVisible();
  await waitForHydration(page);
  const email = `olga-${Date.now()}@e2e.test`;
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Name').fill('Olga Operator');
  await page.getByRole('button', { name: 'Add' }).click();
  const secret = page.getByTestId('one-time-password');
  await expect(page.getByRole('status')).toContainText(`One-time password for ${email}`);
  const first = (await secret.textContent())!.trim();
  const row = page.getByTestId('staff-table').getByRole('row').filter({ hasText: email });
  await expect(row).toContainText('Active');

  // The new role holds when the page is opened again.
  await row.getByLabel(`Role of ${email}`).selectOption('operator');
  const saved = page.waitForResponse((r) => r.url().includes('/api/change_staff_role') && r.ok());
  await row.getByRole('button', { name: 'Save role' }).click();
  await saved;
  await page.reload();
  await expect(row.getByLabel(`Role of ${email}`)).toHaveValue('operator');

  // A reset shows a new one-time password; the first one stops working.
  await waitForHydration(page);
  await row.getByRole('button', { name: 'Reset password' }).click();
  await expect(secret).not.toHaveText(first);
  await expect(page.getByRole('status')).toContainText(`One-time password for ${email}`);
  const reset = (await secret.textContent())!.trim();

  const other = await browser.newContext();
  const olga = await other.newPage();
  await refusedSignIn(olga, email, first);
  await signIn(olga, email, reset);
  await expect(olga).toHaveURL(/\/account\/password/);
  await waitForHydration(olga);
  await olga.getByLabel('Current password').fill(reset);
  await olga.getByLabel('New password', { exact: true }).fill('copper heron drifts past noon');
  await olga.getByLabel('New password again').fill('copper heron drifts past noon');
  await olga.getByRole('button', { name: 'Change password' }).click();
  await expect(olga.getByRole('navigation', { name: 'Panels' })).toBeVisible();
  await expect(olga.getByTestId('signed-in-as')).toContainText('Operator');

  // Disabled: her session ends at once, and she cannot sign in again.
  await row.getByRole('button', { name: 'Disable' }).click();
  await expect(row).toContainText('Disabled');
  await expect(row.getByRole('button', { name: 'Re-enable' })).toBeVisible();
  await olga.goto('/t/demo');
  await expect(olga).toHaveURL(/\/sign-in\?next=\/t\/demo$/);
  await refusedSignIn(olga, email, 'copper heron drifts past noon');
  await other.close();

  await page.goto('/');
  await expect(page.getByTestId('recent-activity')).toContainText('staff.disabled');
  expect(problems).toEqual([]);
});
