import { test, expect } from '@playwright/test';
import { mintToken, signIn, waitForHydration, watchConsole, whoami } from './helpers';

/** The global value each switch the running test flips must be back at when it ends. */
let restore: Record<string, boolean> = {};
/** The URL of the server function the flip form posts to (it carries a build-specific
 * hash), learned from the page's own first flip. */
let flipUrl: string | undefined;

test.beforeEach(({ page }) => {
  restore = {};
  flipUrl = undefined;
  page.on('request', (req) => {
    if (req.method() === 'POST' && /\/api\/flip_switch/.test(req.url())) flipUrl ??= req.url();
  });
});

// A test that fails midway must not leave the gateway off (or the captcha off) for the
// tests after it: each switch it flipped is put back through the same server function the
// flip form calls. One the test already put back is refused as unchanged (409): fine.
test.afterEach(async ({ page, baseURL }) => {
  if (!flipUrl) return; // nothing was flipped
  for (const [key, value] of Object.entries(restore)) {
    const res = await page.request.post(flipUrl, {
      headers: { Origin: baseURL! },
      form: { key, tenant: '', value: String(value), reason: 'e2e: restored after the test', expires_minutes: '', confirmation: key },
    });
    expect([200, 409], `${key}: ${await res.text()}`).toContain(res.status());
  }
});

test('turning agentApiEnabled off refuses the gateway with 503; turning it on needs the key typed', async ({ page, request }) => {
  const problems = watchConsole(page);
  restore = { agentApiEnabled: true };
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
  restore = { TURNSTILE_DISABLED: false };
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

test("rotating a client's key shows the new key once and retires the old; revoking the client refuses its token", async ({ page, request }) => {
  const problems = watchConsole(page);
  await signIn(page, undefined, undefined, '/t/demo/agent-ops');
  await waitForHydration(page);
  const name = `e2e-rotated-${Date.now()}`;
  await page.getByLabel('Name').fill(name);
  await page.getByRole('button', { name: 'Create client' }).click();
  const shown = page.getByTestId('client-key');
  await expect(shown).toHaveText(/^mf_ck_v1\.[1-9A-HJ-NP-Za-km-z]+$/);
  const v1 = (await shown.textContent())!.trim();
  const token = await mintToken(page, 'demo', `e2e rotated client token ${Date.now()}`, `Client: ${name}`);
  expect((await whoami(request, token)).status).toBe(200);

  await page.goto('/t/demo/agent-ops');
  await page.getByTestId('clients').getByRole('link', { name }).click();
  await expect(page.getByRole('heading', { level: 1, name })).toBeVisible();
  await waitForHydration(page);
  const keys = page.getByTestId('client-keys');
  const key = (version: string) => keys.getByRole('row').filter({ has: page.getByRole('cell', { name: version, exact: true }) });
  await expect(key('v1')).toContainText('active');

  // With a grace period, the old key keeps working until it ends.
  const rotation = page.getByRole('region', { name: 'Key rotation' });
  await rotation.getByLabel('Old key keeps working for (hours; 0 = retire at once)').fill('24');
  await rotation.getByLabel('Reason').fill('e2e: scheduled rotation');
  await rotation.getByRole('button', { name: 'Rotate key' }).click();
  await expect(page.getByText('Key v2 created.')).toBeVisible();
  await expect(shown).toHaveText(/^mf_ck_v1\.[1-9A-HJ-NP-Za-km-z]+$/);
  await expect(shown).not.toHaveText(v1);
  const v2 = (await shown.textContent())!.trim();
  await expect(key('v2')).toContainText('active');
  await expect(key('v1')).toContainText('retiring');
  await expect(key('v1')).toContainText('UTC');

  // Without one, it stops at once. The key rotation leaves the client's tokens alone.
  await rotation.getByLabel('Old key keeps working for (hours; 0 = retire at once)').fill('0');
  await rotation.getByLabel('Reason').fill('e2e: key pasted in a ticket');
  await rotation.getByRole('button', { name: 'Rotate key' }).click();
  await expect(page.getByText('Key v3 created.')).toBeVisible();
  await expect(shown).not.toHaveText(v2);
  await expect(key('v3')).toContainText('active');
  await expect(key('v2')).toContainText('retired');
  await expect(key('v1')).toContainText('retiring');
  await expect(page.getByTestId('client-history')).toContainText('client.key_rotated');
  expect((await whoami(request, token)).status).toBe(200);

  // Shown once: gone when the page is opened again.
  await page.reload();
  await waitForHydration(page);
  await expect(key('v3')).toContainText('active');
  await expect(shown).toHaveCount(0);

  // Revoke: a preview of what it takes, then the client's name typed.
  const revoke = page.getByRole('region', { name: 'Revoke client' });
  await revoke.getByRole('button', { name: 'Preview what it revokes' }).click();
  await expect(revoke.getByTestId('revoke-preview')).toHaveText(`Revokes 1 active token(s) and 2 working key(s) of “${name}”.`);
  await revoke.getByLabel('Reason').fill('e2e: client compromised');
  await revoke.getByLabel(`Type ${name} to confirm`).fill('yes');
  await revoke.getByRole('button', { name: 'Revoke client' }).click();
  await expect(revoke.getByText(`Type the client's name, ${name}, to confirm.`)).toBeVisible();
  expect((await whoami(request, token)).status).toBe(200);
  await revoke.getByLabel(`Type ${name} to confirm`).fill(name);
  await revoke.getByRole('button', { name: 'Revoke client' }).click();
  await expect(page.getByTestId('client-status')).toHaveText('revoked');
  await expect(page.getByText('This client is revoked: nothing more can be changed.')).toBeVisible();
  await expect(key('v3')).toContainText('revoked');
  await expect(key('v1')).toContainText('revoked');
  await expect(key('v2')).toContainText('retired');
  expect(await whoami(request, token)).toEqual({ status: 401, code: 'CLIENT_REVOKED' });
  await expect(page.getByTestId('client-history')).toContainText('client.revoked');
  // The one 422 is the wrong confirmation.
  expect(problems.filter((p) => !p.includes('422'))).toEqual([]);
});
