import { test, expect } from '@playwright/test';
import { historyShows, mintToken, signIn, waitForHydration, watchConsole, whoami } from './helpers';

test('mint a token, use it at the gateway, see it used, revoke it, see the refusal', async ({ page, request }) => {
  const problems = watchConsole(page);
  await signIn(page, undefined, undefined, '/t/demo/integrations');
  await expect(page.getByRole('heading', { level: 1, name: 'Integrations' })).toBeVisible();
  await waitForHydration(page);

  // Bad input is explained next to its field, and nothing is minted.
  await page.getByLabel('Name').fill('   ');
  await page.getByRole('button', { name: 'Mint token' }).click();
  await expect(page.locator('#mint-name-error')).toContainText('Give the token a name');

  const name = `e2e deploy ${Date.now()}`;
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('Lifetime (days)').fill('7');
  await page.getByRole('button', { name: 'Mint token' }).click();
  const shown = page.getByTestId('minted-token');
  await expect(shown).toBeVisible();
  const token = (await shown.textContent())!.trim();
  expect(token).toMatch(/^mf_pat_v1\.[1-9A-HJ-NP-Za-km-z]+\.[1-9A-HJ-NP-Za-km-z]+$/);

  // The gateway accepts it.
  const ok = await request.get('/agent/v1/whoami', { headers: { Authorization: `Bearer ${token}` } });
  expect(ok.status()).toBe(200);
  const me = await ok.json();
  expect(me.tenant).toBe('demo');
  expect(me.scopes).toEqual(['agent:read']);

  // The token's page shows the use.
  await page.getByTestId('token-table').getByRole('link', { name }).click();
  await expect(page.getByTestId('token-heading')).toHaveText(name);
  await historyShows(page, 'used');
  await expect(page.getByText(token)).toHaveCount(0);

  // Revoke it, with a reason.
  await waitForHydration(page);
  await page.getByLabel('Reason').fill('e2e: suspected leak');
  await page.getByRole('button', { name: 'Revoke' }).click();
  await expect(page.getByTestId('token-status')).toHaveText('revoked');

  // The very next call is refused, and the refusal is in the history.
  const refused = await request.get('/agent/v1/whoami', { headers: { Authorization: `Bearer ${token}` } });
  expect(refused.status()).toBe(401);
  expect((await refused.json()).error.code).toBe('PAT_REVOKED_OR_INVALID');
  await historyShows(page, 'PAT_REVOKED_OR_INVALID');
  await expect(page.getByTestId('token-history')).toContainText('failed_auth');
  await expect(page.getByTestId('token-history')).toContainText('revoked');
  // The one 422 is the empty name refused above.
  expect(problems.filter((p) => !p.includes('422'))).toEqual([]);
});

test('the token list filters through the URL', async ({ page }) => {
  await signIn(page, undefined, undefined, '/t/demo/integrations');
  // One token of each status to tell apart, whatever other tests minted meanwhile.
  const stamp = Date.now();
  const kept = `e2e filter kept ${stamp}`;
  const gone = `e2e filter revoked ${stamp}`;
  await mintToken(page, 'demo', kept);
  await mintToken(page, 'demo', gone);
  await page.getByTestId('token-table').getByRole('link', { name: gone }).click();
  await waitForHydration(page);
  await page.getByLabel('Reason').fill('e2e: filter test');
  await page.getByRole('button', { name: 'Revoke' }).click();
  await expect(page.getByTestId('token-status')).toHaveText('revoked');

  await page.goto('/t/demo/integrations');
  await waitForHydration(page);
  await page.getByLabel('Status').selectOption('revoked');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/status=revoked/);
  const table = page.getByTestId('token-table');
  await expect(table.getByRole('link', { name: gone })).toBeVisible();
  await expect(table.getByRole('link', { name: kept })).toHaveCount(0);
  const statuses = await table.locator('tbody td:nth-child(5)').allTextContents();
  expect(statuses.length).toBeGreaterThan(0);
  expect(statuses.map((s) => s.trim()).filter((s) => s !== 'revoked')).toEqual([]);

  await page.getByLabel('Id or pasted token').fill('mf_pat_v1.ab cd.ef');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page.getByRole('alert')).toContainText('spaces');
});

test("revoking all of an API client's tokens previews the count, needs the name typed, and leaves other tokens alone", async ({ page, request }) => {
  const problems = watchConsole(page);
  // Scoped to a client of its own, so no other test's tokens are touched.
  await signIn(page, undefined, undefined, '/t/demo/agent-ops');
  await waitForHydration(page);
  const client = `e2e-mass-${Date.now()}`;
  await page.getByLabel('Name').fill(client);
  await page.getByRole('button', { name: 'Create client' }).click();
  await expect(page.getByTestId('clients')).toContainText(client);
  const stamp = Date.now();
  const first = await mintToken(page, 'demo', `e2e mass one ${stamp}`, `Client: ${client}`);
  const second = await mintToken(page, 'demo', `e2e mass two ${stamp}`, `Client: ${client}`);
  const bystander = await mintToken(page, 'demo', `e2e mass bystander ${stamp}`);
  for (const token of [first, second, bystander]) expect((await whoami(request, token)).status).toBe(200);

  await page.goto('/t/demo/integrations');
  await waitForHydration(page);
  await page.getByText('Revoke many tokens (incident)').click();
  await page.getByLabel('Revoke', { exact: true }).selectOption({ label: `Tokens of client ${client}` });
  await page.getByRole('button', { name: 'Preview', exact: true }).click();
  await expect(page.getByTestId('revoke-preview')).toHaveText(
    `This revokes 2 active token(s): every active token of client ${client}. Callers using them are refused from the next call.`,
  );
  await page.getByLabel('Reason', { exact: true }).fill('e2e: client credentials leaked');
  await page.getByLabel(`Type ${client} to confirm`).fill('demo');
  await page.getByRole('button', { name: 'Revoke 2 token(s)' }).click();
  await expect(page.getByText(`Type ${client} exactly to confirm.`)).toBeVisible();
  expect((await whoami(request, first)).status).toBe(200);

  await page.getByLabel(`Type ${client} to confirm`).fill(client);
  await page.getByRole('button', { name: 'Revoke 2 token(s)' }).click();
  await expect(page.getByText('Revoked 2 token(s).')).toBeVisible();
  for (const token of [first, second]) {
    expect(await whoami(request, token)).toEqual({ status: 401, code: 'PAT_REVOKED_OR_INVALID' });
  }
  expect((await whoami(request, bystander)).status).toBe(200);
  const table = page.getByTestId('token-table');
  await expect(table.getByRole('row').filter({ hasText: `e2e mass one ${stamp}` })).toContainText('revoked');
  await expect(table.getByRole('row').filter({ hasText: `e2e mass two ${stamp}` })).toContainText('revoked');
  await expect(table.getByRole('row').filter({ hasText: `e2e mass bystander ${stamp}` })).toContainText('active');
  // The one 422 is the wrong confirmation.
  expect(problems.filter((p) => !p.includes('422'))).toEqual([]);
});
