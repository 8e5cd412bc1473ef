import { test, expect } from '@playwright/test';
import { historyShows, mintToken, signIn, waitForHydration, watchConsole, whoami } from './helpers';

// The compromise rotation revokes every active token of the platform. That is safe here
// because no spec keeps a token across tests (each mints its own when it runs), and the
// e2e run starts on a fresh database.

test('a staged rotation keeps tokens working through the grace period and moves them to the new version', async ({ page, request }) => {
  const problems = watchConsole(page);
  await signIn(page, undefined, undefined, '/t/demo/integrations');
  const name = `e2e staged ${Date.now()}`;
  const token = await mintToken(page, 'demo', name);
  expect((await whoami(request, token)).status).toBe(200);

  await page.goto('/pepper');
  await expect(page.getByRole('heading', { level: 1, name: 'Token pepper' })).toBeVisible();
  await waitForHydration(page);
  const staged = page.getByRole('region', { name: 'Staged rotation' });
  await staged.getByLabel('Grace period (hours)').fill('24');
  await staged.getByLabel('Reason').fill('e2e: scheduled rotation');
  await staged.getByLabel('Type rotate to confirm').fill('rotate');
  await staged.getByRole('button', { name: 'Rotate the pepper' }).click();
  const done = staged.getByRole('status');
  await expect(done).toHaveText(/^Version \d+ is now current\.$/);
  const version = Number(/\d+/.exec((await done.textContent())!)![0]);

  const versions = page.getByTestId('pepper-versions');
  const row = (v: number) => versions.getByRole('row').filter({ has: page.getByRole('cell', { name: `v${v}`, exact: true }) });
  await expect(row(version)).toContainText('current');
  await expect(row(version - 1)).toContainText('previous');
  await expect(row(version - 1)).toContainText('verifies until');

  // In the grace period the token still works, and its use re-hashes it to the new version.
  expect((await whoami(request, token)).status).toBe(200);
  await page.goto('/t/demo/integrations');
  await page.getByTestId('token-table').getByRole('link', { name }).click();
  await expect(page.getByTestId('token-heading')).toHaveText(name);
  await historyShows(page, 'rehashed');
  expect((await whoami(request, token)).status).toBe(200);
  expect(problems).toEqual([]);
});

test('a compromise rotation previews what it revokes, then every earlier token is refused', async ({ page, request }) => {
  const problems = watchConsole(page);
  await signIn(page, undefined, undefined, '/t/demo/integrations');
  const stamp = Date.now();
  const demo = await mintToken(page, 'demo', `e2e before compromise ${stamp}`);
  const globex = await mintToken(page, 'globex', `e2e before compromise ${stamp}`);
  expect((await whoami(request, demo)).status).toBe(200);
  expect((await whoami(request, globex)).status).toBe(200);

  await page.goto('/pepper');
  await waitForHydration(page);
  const compromise = page.getByRole('region', { name: 'Compromise rotation' });
  await compromise.getByRole('button', { name: 'Preview what it revokes' }).click();
  const preview = compromise.getByTestId('compromise-preview');
  await expect(preview).toContainText(/^\d+ active token\(s\) would be revoked:/);
  // Per tenant, adding up to the total.
  const tenants = preview.getByRole('listitem');
  await expect(tenants.filter({ hasText: 'Demo Tenant (demo): ' })).toHaveText(/: [1-9]\d*$/);
  await expect(tenants.filter({ hasText: 'Globex Agents (globex): ' })).toHaveText(/: [1-9]\d*$/);
  const total = Number(/^\d+/.exec((await preview.textContent())!)![0]);
  const counts = (await tenants.allTextContents()).map((t) => Number(t.split(': ').pop()));
  expect(counts.reduce((a, b) => a + b, 0)).toBe(total);

  // A mistyped confirmation is refused beside its field, and nothing on screen is lost: the
  // preview, the reason, what was typed.
  const reason = compromise.getByLabel('Reason');
  const confirm = compromise.getByLabel('Type revoke all tokens to confirm');
  await reason.fill('e2e: pepper seen in a core dump');
  await confirm.fill('revoke all token');
  await compromise.getByRole('button', { name: `Rotate and revoke ${total} token(s)` }).click();
  await expect(compromise.locator('#compromise-confirm-error')).not.toBeEmpty();
  await expect(preview).toBeVisible();
  await expect(reason).toHaveValue('e2e: pepper seen in a core dump');
  await expect(confirm).toHaveValue('revoke all token');
  expect((await whoami(request, demo)).status).toBe(200);

  await confirm.fill('revoke all tokens');
  await compromise.getByRole('button', { name: `Rotate and revoke ${total} token(s)` }).click();
  await expect(compromise.getByRole('status')).toHaveText(
    new RegExp(`^Version \\d+ is now current; ${total} token\\(s\\) were revoked\\. Ask integrators to mint new tokens\\.$`),
  );

  // Every version but the new one is retired, and no token is left on any.
  const states = page.getByTestId('pepper-versions').locator('tbody td:nth-child(2)');
  await expect(states.filter({ hasText: 'current' })).toHaveCount(1);
  await expect(states.filter({ hasText: 'previous' })).toHaveCount(0);
  const onThem = await page.getByTestId('pepper-versions').locator('tbody td:nth-child(3)').allTextContents();
  expect(onThem.map((n) => n.trim()).filter((n) => n !== '0')).toEqual([]);

  // The runbook's check: old tokens are refused, a newly minted one works.
  expect(await whoami(request, demo)).toEqual({ status: 401, code: 'PAT_REVOKED_OR_INVALID' });
  expect(await whoami(request, globex)).toEqual({ status: 401, code: 'PAT_REVOKED_OR_INVALID' });
  const fresh = await mintToken(page, 'demo', `e2e after compromise ${stamp}`);
  expect((await whoami(request, fresh)).status).toBe(200);
  // The one 422 is the mistyped confirmation.
  expect(problems.filter((p) => !p.includes('422'))).toEqual([]);
});
