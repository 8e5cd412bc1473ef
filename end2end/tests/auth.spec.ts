import { test, expect } from '@playwright/test';
import { ADMIN_EMAIL, signIn, waitForHydration, watchConsole } from './helpers';

test('a wrong password gets the generic message and no session', async ({ page }) => {
  await page.goto('/sign-in');
  await waitForHydration(page);
  await page.getByLabel('Email').fill(ADMIN_EMAIL);
  await page.getByLabel('Password').fill('definitely not it');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Email or password is incorrect.');
  await page.goto('/');
  await expect(page).toHaveURL(/\/sign-in$/);
});

test('signing in returns to the page asked for, and signing out ends the session', async ({ page }) => {
  const problems = watchConsole(page);
  await signIn(page, undefined, undefined, '/t/demo');
  await expect(page).toHaveURL(/\/t\/demo$/);
  await expect(page.getByTestId('signed-in-as')).toContainText('E2E Admin');
  await expect(page.getByTestId('recent-activity').or(page.getByText('No activity recorded'))).toBeVisible();

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/sign-in$/);
  await page.goto('/t/demo');
  await expect(page).toHaveURL(/\/sign-in\?next=\/t\/demo$/);
  expect(problems.filter((p) => !p.includes('401'))).toEqual([]);
});

test('an admin creates a staff member who sees only what their role allows', async ({ page, browser }) => {
  await signIn(page);
  await page.getByRole('navigation', { name: 'Panels' }).getByRole('link', { name: 'Staff' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Staff' })).toBeVisible();

  const email = `viewer-${Date.now()}@e2e.test`;
  await page.getByLabel('Email').fill('not an email');
  await page.getByLabel('Name').fill('Vera Viewer');
  await page.getByRole('button', { name: 'Add' }).click();
  await expect(page.locator('#new-email-error')).toContainText('Enter an email address');

  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Add' }).click();
  const secret = page.getByTestId('one-time-password');
  await expect(secret).toBeVisible();
  const password = (await secret.textContent())!.trim();
  await expect(page.getByTestId('staff-table')).toContainText(email);

  const other = await browser.newContext();
  const viewer = await other.newPage();
  await signIn(viewer, email, password);
  // The handed-over password opens only the page that replaces it.
  await expect(viewer).toHaveURL(/\/account\/password/);
  await expect(viewer.getByTestId('password-required')).toBeVisible();
  await expect(viewer.getByRole('navigation', { name: 'Panels' })).toHaveCount(0);
  await waitForHydration(viewer);
  await viewer.getByLabel('Current password').fill(password);
  await viewer.getByLabel('New password', { exact: true }).fill('password1234');
  await viewer.getByLabel('New password again').fill('password1234');
  await viewer.getByRole('button', { name: 'Change password' }).click();
  await expect(viewer.locator('#new-password-error')).toContainText('common passwords');
  await viewer.getByLabel('New password', { exact: true }).fill('amber falcon quietly sings');
  await viewer.getByLabel('New password again').fill('amber falcon quietly sings');
  await viewer.getByRole('button', { name: 'Change password' }).click();
  await expect(viewer.getByRole('navigation', { name: 'Panels' })).toBeVisible();
  await expect(viewer.getByTestId('password-required')).toHaveCount(0);
  await expect(viewer.getByTestId('signed-in-as')).toContainText('Viewer');
  const nav = viewer.getByRole('navigation', { name: 'Panels' });
  await expect(nav.getByRole('link', { name: 'Tenants' })).toBeVisible();
  await expect(nav.getByRole('link', { name: 'Staff' })).toHaveCount(0);
  await viewer.goto('/staff');
  await expect(viewer.getByRole('alert')).toContainText('Your role does not allow this action.');
  await other.close();

  // The admin's home page shows what just happened.
  await page.goto('/');
  await expect(page.getByTestId('recent-activity')).toContainText('staff.created');
});
