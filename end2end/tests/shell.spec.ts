import { test, expect } from '@playwright/test';
import { signIn, waitForHydration, watchConsole } from './helpers';

test.beforeEach(async ({ page }) => {
  await signIn(page);
});

test('the shell renders with navigation, tenants and no console errors', async ({ page }) => {
  const problems = watchConsole(page);
  await page.goto('/');
  await expect(page.getByRole('banner')).toContainText('staff-console');
  const nav = page.getByRole('navigation', { name: 'Panels' });
  await expect(nav.getByRole('link', { name: 'Tenants' })).toHaveAttribute('aria-current', 'page');
  await expect(page.getByRole('heading', { level: 1, name: 'Tenants' })).toBeVisible();
  const table = page.getByRole('table');
  await expect(table.getByRole('link', { name: 'Demo Tenant' })).toBeVisible();
  await expect(table.getByRole('link', { name: 'Globex Agents' })).toBeVisible();
  await waitForHydration(page);
  expect(problems).toEqual([]);
});

test('hydration makes the tenant filter respond to typing', async ({ page }) => {
  const problems = watchConsole(page);
  await page.goto('/');
  await waitForHydration(page);
  // Every tenant at first (other specs create tenants of their own: as many as the list).
  const tenants = await page.getByTestId('tenants').locator('tbody a').count();
  expect(tenants).toBeGreaterThanOrEqual(3);
  await page.getByText('Choose a tenant').click();
  const options = page.getByTestId('tenant-options');
  await expect(options.getByRole('link')).toHaveCount(tenants);

  await page.getByLabel('Filter tenants').fill('glob');
  await expect(options.getByRole('link')).toHaveCount(1);
  await expect(options.getByRole('link')).toContainText('Globex Agents');

  await page.getByLabel('Filter tenants').fill('zzz-nothing');
  await expect(options).toContainText('No tenant matches.');
  expect(problems).toEqual([]);
});

test('the tenant switcher changes the tenant, by keyboard', async ({ page }) => {
  const problems = watchConsole(page);
  await page.goto('/t/demo');
  await waitForHydration(page);
  await expect(page.getByTestId('tenant-heading')).toHaveText('Demo Tenant');
  await expect(page.getByTestId('current-tenant')).toHaveText('Demo Tenant');

  // Open the switcher, filter, and pick a tenant without touching the mouse.
  await page.locator('.tenant-switcher > summary').focus();
  await page.keyboard.press('Enter');
  await expect(page.getByLabel('Filter tenants')).toBeVisible();
  await page.keyboard.press('Tab');
  await expect(page.getByLabel('Filter tenants')).toBeFocused();
  await page.keyboard.type('initech');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');

  await expect(page).toHaveURL(/\/t\/initech$/);
  await expect(page.getByTestId('tenant-heading')).toHaveText('Initech Integrations');
  await expect(page.getByTestId('current-tenant')).toHaveText('Initech Integrations');
  await expect(page.getByRole('navigation', { name: 'Panels' }).getByRole('link', { name: 'Overview' }))
    .toHaveAttribute('aria-current', 'page');
  await expect(page.getByTestId('tenant-options')).toBeHidden();
  expect(problems).toEqual([]);
});

test('an unknown tenant gets a clear message', async ({ page }) => {
  const response = await page.goto('/t/nobody-here');
  expect(response?.status()).toBe(404);
  await expect(page.getByRole('alert')).toContainText('Tenant “nobody-here” was not found.');
});
