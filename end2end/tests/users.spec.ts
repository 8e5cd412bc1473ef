import { test, expect, type APIRequestContext } from '@playwright/test';
import { signIn, waitForHydration, watchConsole } from './helpers';

const PASSWORD = 'correct horse battery';

async function endUserSignIn(request: APIRequestContext, slug: string, email: string) {
  const res = await request.post(`/a/${slug}/auth/sign-in`, { data: { email, password: PASSWORD } });
  expect(res.status()).toBe(200);
  return (await res.json()) as { access_token: string; refresh_token: string };
}

test('an operator locks an account whose session is in use: its next refresh and its next /me are refused', async ({ page, request }) => {
  const problems = watchConsole(page);
  await signIn(page);
  // A tenant of its own, through the page.
  const slug = `e2e-users-${Date.now()}`;
  await page.goto('/tenants/new');
  await waitForHydration(page);
  await page.getByLabel(/^Slug/).fill(slug);
  await page.getByLabel('Name', { exact: true }).fill('E2E users');
  await page.getByRole('button', { name: 'Create tenant' }).click();
  await expect(page.getByRole('status')).toContainText(`Tenant “${slug}” created`);

  // An account, created in the panel; a bad email is refused beside its field.
  await page.goto(`/t/${slug}/users`);
  await expect(page.getByRole('heading', { level: 1, name: 'Users' })).toBeVisible();
  await waitForHydration(page);
  const create = page.getByRole('region', { name: 'Create a user' });
  await create.getByLabel('Email').fill('not-an-email');
  await create.getByLabel(/^Password/).fill(PASSWORD);
  await create.getByRole('button', { name: 'Create user' }).click();
  await expect(page.locator('#new-user-email-error')).toContainText('name@example.com');
  await create.getByLabel('Email').fill('ada@example.com');
  await create.getByRole('button', { name: 'Create user' }).click();
  await expect(create.getByRole('status')).toContainText('The account is created.');
  const row = page.getByTestId('end-users').locator('tr', { hasText: 'ada@example.com' });
  await expect(row).toContainText('active');

  // The user signs in through the tenant's API: a session in use.
  const tokens = await endUserSignIn(request, slug, 'ada@example.com');
  const me = () => request.get(`/a/${slug}/api/v1/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  expect((await me()).status()).toBe(200);

  await row.getByRole('link', { name: 'ada@example.com' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'ada@example.com' })).toBeVisible();
  await waitForHydration(page);
  await expect(page.getByTestId('user-sessions').locator('tbody tr')).toHaveCount(1);
  const lock = page.getByRole('region', { name: 'Lock the account' });
  await expect(lock.getByTestId('lock-preview')).toContainText('revokes the 1 live session(s)');
  await lock.getByLabel('Reason').fill('e2e: sign-ins from an unknown country');
  await lock.getByRole('button', { name: 'Lock the account' }).click();
  await expect(page.getByTestId('user-done')).toContainText('The account is locked; 1 session(s) were revoked.');
  await expect(page.getByTestId('user-state')).toContainText('locked');
  await expect(page.getByTestId('user-events')).toContainText('end_user.locked');

  // The next /me is refused within a second, and so is the next refresh.
  await expect.poll(async () => (await me()).status(), { timeout: 2000 }).toBe(401);
  expect((await (await me()).json()).error.code).toBe('ACCESS_TOKEN_REVOKED');
  const refreshed = await request.post(`/a/${slug}/oauth/token`, {
    form: { grant_type: 'refresh_token', refresh_token: tokens.refresh_token },
  });
  expect(refreshed.status()).toBe(400);
  const body = await refreshed.json();
  expect(body.error).toBe('invalid_grant');
  expect(body.code).toBe('REFRESH_TOKEN_REVOKED');
  // A new sign-in is refused while the account is locked.
  const again = await request.post(`/a/${slug}/auth/sign-in`, { data: { email: 'ada@example.com', password: PASSWORD } });
  expect((await again.json()).error.code).toBe('ACCOUNT_LOCKED');
  // The refused email beside its field was the only failed request.
  expect(problems.filter((p) => !p.includes('status of 422'))).toEqual([]);
});
