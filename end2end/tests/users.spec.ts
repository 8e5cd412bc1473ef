import { test, expect, type APIRequestContext } from '@playwright/test';
import { signIn, waitForHydration, watchConsole } from './helpers';

const PASSWORD = 'correct horse battery';

async function endUserSignIn(request: APIRequestContext, slug: string, email: string) {
  const res = await request.post(`/a/${slug}/auth/sign-in`, { data: { email, password: PASSWORD } });
  expect(res.status()).toBe(200);
  return (await res.json()) as { access_token: string; refresh_token: string };
}

test('an operator locks an account whose session is in use: its next refresh and /me are refused, and the recovery mail in the outbox sets a new password', async ({ page, request }) => {
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
  // Runbook 004 in one action: a recovery mail to the known-good address, by default.
  await expect(lock.getByLabel('Send a recovery mail to ada@example.com')).toBeChecked();
  await lock.getByLabel('Reason').fill('e2e: sign-ins from an unknown country');
  await lock.getByRole('button', { name: 'Lock the account' }).click();
  await expect(page.getByTestId('user-done')).toContainText(
    'The account is needs_password_reset; 1 session(s) were revoked. A recovery mail is queued.',
  );
  await expect(page.getByTestId('user-state')).toContainText('needs_password_reset');
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
  // A new sign-in is refused until the password is set through recovery.
  const again = await request.post(`/a/${slug}/auth/sign-in`, { data: { email: 'ada@example.com', password: PASSWORD } });
  expect((await again.json()).error.code).toBe('PASSWORD_RESET_REQUIRED');

  // The recovery mail is in the development outbox, listed by the console.
  await page.getByRole('link', { name: "The tenant's mail queue" }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Mail' })).toBeVisible();
  await waitForHydration(page);
  await expect(page.getByTestId('mail-status')).toContainText('DATA_DIR/outbox');
  const sent = page.getByTestId('mail-recent').locator('tr', { hasText: 'ada@example.com' });
  // The sender sends within a second of the lock.
  // Each look goes to the Users page and back through the navigation (a client-side route
  // change reads the page again).
  const nav = page.getByRole('navigation', { name: 'Panels' });
  await expect(async () => {
    await nav.getByRole('link', { name: 'Users', exact: true }).click();
    await expect(page.getByRole('heading', { level: 1, name: 'Users' })).toBeVisible();
    await nav.getByRole('link', { name: 'Mail', exact: true }).click();
    await expect(page.getByTestId('mail-status')).toBeVisible();
    await expect(sent).toHaveCount(1, { timeout: 1000 });
  }).toPass({ timeout: 30000 });
  await expect(sent).toContainText('recovery');
  await expect(sent).toContainText('sent');
  await sent.getByRole('button', { name: 'View' }).click();
  const message = page.getByTestId('outbox-message');
  await expect(message).toContainText('Subject: Set a new password');
  await expect(message).toContainText('To: ada@example.com');
  const text = (await message.textContent()) ?? '';
  const link = text.match(/https?:\/\/\S+\/auth\/recovery\?token=mf_rc_v1\.[A-Za-z0-9.]+/)?.[0];
  expect(link).toBeTruthy();

  // The mailbox's owner follows it and sets a new password: signed in again with it only.
  await page.goto(new URL(link!).pathname + new URL(link!).search);
  await page.getByLabel('New password (12 to 128 characters)').fill('a brand new passphrase');
  await page.getByRole('button', { name: 'Set a new password' }).click();
  await expect(page.locator('body')).toContainText('recovered');
  const back = await request.post(`/a/${slug}/auth/sign-in`, {
    data: { email: 'ada@example.com', password: 'a brand new passphrase' },
  });
  expect(back.status()).toBe(200);
  // The refused email beside its field was the only failed request.
  expect(problems.filter((p) => !p.includes('status of 422'))).toEqual([]);
});

test('a CSV import is checked first: the wrong lines are named, then every user is created', async ({ page }) => {
  const problems = watchConsole(page);
  await signIn(page);
  const slug = `e2e-import-${Date.now()}`;
  await page.goto('/tenants/new');
  await waitForHydration(page);
  await page.getByLabel(/^Slug/).fill(slug);
  await page.getByLabel('Name', { exact: true }).fill('E2E import');
  await page.getByRole('button', { name: 'Create tenant' }).click();
  await expect(page.getByRole('status')).toContainText(`Tenant “${slug}” created`);
  await page.goto(`/t/${slug}/users`);
  await waitForHydration(page);
  const form = page.getByRole('region', { name: 'Import users (CSV)' });
  await form.getByLabel('Or paste it').fill('email\nbob@example.com\nnot-an-email\n');
  await expect(form.getByRole('button', { name: 'Import' })).toBeDisabled();
  await form.getByRole('button', { name: 'Check the file' }).click();
  await expect(form.getByTestId('import-summary')).toContainText('1 user(s) would be created; 1 line(s) are wrong');
  await expect(form.getByTestId('import-lines').locator('tr[data-line="3"]')).toContainText('name@example.com');
  await expect(form.getByRole('button', { name: 'Import' })).toBeDisabled();
  // The file, from disk this time.
  await form.getByLabel('CSV file').setInputFiles({
    name: 'users.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from('email\nbob@example.com\ncarol@example.com\n'),
  });
  await expect(form.getByLabel('Or paste it')).toHaveValue(/carol@example.com/);
  await form.getByRole('button', { name: 'Check the file' }).click();
  await expect(form.getByTestId('import-summary')).toContainText('2 user(s) will be created.');
  await form.getByLabel('Reason').fill('e2e: onboarding');
  await form.getByRole('button', { name: 'Import' }).click();
  await expect(form.getByTestId('import-summary')).toContainText('2 user(s) created; 2 recovery mail queued.');
  await expect(page.getByTestId('end-users').locator('tr', { hasText: 'carol@example.com' })).toContainText('needs_password_reset');
  expect(problems).toEqual([]);
});
