import { test, expect, type APIRequestContext } from '@playwright/test';
import { mintToken, signIn, waitForHydration, watchConsole } from './helpers';

async function whoami(request: APIRequestContext, token: string) {
  const res = await request.get('/agent/v1/whoami', { headers: { Authorization: `Bearer ${token}` } });
  const body = await res.json();
  return { status: res.status(), code: body.error?.code as string | undefined };
}

test('turning agentApiEnabled off refuses the gateway with 503; turning it on needs the key typed', async ({ page, request }) => {
  const problems = watchConsole(page);
  await signIn(page);
  const token = await mintToken(page, 'demo', `e2e switch ${Date.now()}`);
  expect((await whoami(request, token)).status).toBe(200);

  await page.goto('/switches');
  await expect(page.getByRole('heading', { level: 1, name: 'Kill switches' })).toBeVisible();
  await waitForHydration(page);
  const card = page.getByTestId('switch-agentApiEnabled');
  await card.getByRole('button', { name: 'Set off globally…' }).click();
  await expect(page.getByLabel('Reason', { exact: true })).toBeFocused();
  await page.getByLabel('Reason', { exact: true }).fill('e2e: INC-1 abuse spike');
  await page.getByRole('button', { name: 'Set agentApiEnabled off' }).click();
  await expect(page.getByRole('status')).toContainText('Switch set');
  await expect(card.getByTestId('global-value')).toContainText('off');
  expect(await whoami(request, token)).toEqual({ status: 503, code: 'AGENT_API_DISABLED' });

  // On again removes a protection: refused until the key is typed.
  await card.getByRole('button', { name: 'Set on globally…' }).click();
  await page.getByLabel('Reason', { exact: true }).fill('e2e: spike over');
  await page.getByRole('button', { name: 'Set agentApiEnabled on' }).click();
  await expect(page.getByText('This removes a protection: type agentApiEnabled to confirm.')).toBeVisible();
  expect((await whoami(request, token)).status).toBe(503);
  await page.getByLabel('Type agentApiEnabled to confirm').fill('agentApiEnabled');
  await page.getByRole('button', { name: 'Set agentApiEnabled on' }).click();
  await expect(card.getByTestId('global-value')).toContainText('on');
  expect((await whoami(request, token)).status).toBe(200);
  // The one 422 is the unconfirmed flip.
  expect(problems.filter((p) => !p.includes('422'))).toEqual([]);
});

test('suspending an API client refuses its tokens with 403 CLIENT_SUSPENDED', async ({ page, request }) => {
  await signIn(page, undefined, undefined, '/t/demo/agent-ops');
  await waitForHydration(page);
  const name = `e2e-bot-${Date.now()}`;
  await page.getByLabel('Name').fill(name);
  await page.getByRole('button', { name: 'Create client' }).click();
  await expect(page.getByTestId('client-key')).toHaveText(/^mf_ck_v1\.[1-9A-HJ-NP-Za-km-z]+$/);
  await expect(page.getByTestId('clients')).toContainText(name);

  const token = await mintToken(page, 'demo', `e2e client token ${Date.now()}`, `Client: ${name}`);
  expect((await whoami(request, token)).status).toBe(200);

  await page.goto('/t/demo/agent-ops');
  await page.getByTestId('clients').getByRole('link', { name }).click();
  await expect(page.getByRole('heading', { level: 1, name })).toBeVisible();
  await waitForHydration(page);
  await page.getByRole('button', { name: 'Suspend client' }).click();
  await expect(page.locator('#status-reason-error')).toContainText('Say why');
  await page.locator('#status-reason').fill('e2e: coordinated abuse');
  await page.getByRole('button', { name: 'Suspend client' }).click();
  await expect(page.getByTestId('client-status')).toHaveText('suspended');
  expect(await whoami(request, token)).toEqual({ status: 403, code: 'CLIENT_SUSPENDED' });
  await expect(page.getByTestId('client-history')).toContainText('client.suspended');
});

test('a timed TURNSTILE_DISABLED shows its countdown and can be ended early', async ({ page }) => {
  await signIn(page, undefined, undefined, '/switches');
  await waitForHydration(page);
  await page.getByLabel('Switch', { exact: true }).selectOption('TURNSTILE_DISABLED');
  await page.getByRole('radio', { name: 'on / true' }).check();
  await page.getByLabel('Reason', { exact: true }).fill('e2e: Turnstile outage');
  await page.getByLabel('Revert after (minutes, optional)').fill('60');
  await page.getByLabel('Type TURNSTILE_DISABLED to confirm').fill('TURNSTILE_DISABLED');
  await page.getByRole('button', { name: 'Set TURNSTILE_DISABLED captcha off' }).click();
  const card = page.getByTestId('switch-TURNSTILE_DISABLED');
  await expect(card.getByTestId('global-value')).toContainText('captcha off');
  const timer = card.getByTestId('countdown').getByRole('timer');
  await expect(timer).toHaveText(/^(59|60) min \d\d s$/);
  // It ticks in the browser.
  const before = await timer.textContent();
  await expect(timer).not.toHaveText(before!, { timeout: 3_000 });

  // Putting the captcha back adds protection: a reason is enough, and the timer goes.
  await card.getByRole('button', { name: 'Set captcha on globally…' }).click();
  await page.getByLabel('Reason', { exact: true }).fill('e2e: Turnstile recovered');
  await page.getByRole('button', { name: 'Set TURNSTILE_DISABLED captcha on' }).click();
  await expect(card.getByTestId('global-value')).toContainText('captcha on');
  await expect(card.getByTestId('countdown')).toHaveCount(0);
});
