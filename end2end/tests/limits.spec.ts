import { test, expect } from '@playwright/test';
import { mintToken, signIn, waitForHydration, watchConsole, whoami } from './helpers';

// The browser tests call the gateway from 127.0.0.1: anything that limits or blocks an
// address is set on a documentation network (RFC 5737) that cannot include the suite itself.
const NETWORK = '198.51.100.0/24';
// Clients this file creates, so the clean-up below can find what it set for them.
const CLIENT_PREFIX = 'e2e-limits-';

// Whatever a test got as far as setting is lifted, even when it failed midway: through the
// same server functions the panel's Remove and Unblock forms post to, read off the page the
// server renders (so it works even if the page never became interactive).
test.afterEach(async ({ page, baseURL }) => {
  await page.goto('/limits');
  const ours = new RegExp(`${NETWORK.replace(/\./g, '\\.')}|${CLIENT_PREFIX}`);
  for (const table of ['overrides', 'blocks']) {
    const forms = page.getByTestId(table).getByRole('row').filter({ hasText: ours }).locator('form');
    for (const form of await forms.all()) {
      const fields: Record<string, string> = await form
        .locator('input[type=hidden]')
        .evaluateAll((inputs) => Object.fromEntries(inputs.map((i) => [(i as HTMLInputElement).name, (i as HTMLInputElement).value])));
      const res = await page.request.post((await form.getAttribute('action'))!, {
        headers: { Origin: baseURL! },
        form: { ...fields, reason: 'e2e: clean-up after the test' },
      });
      expect(res.ok(), await res.text()).toBe(true);
    }
  }
});

test('an address override and a block are listed, audited, and lifted with a reason', async ({ page, request }) => {
  const problems = watchConsole(page);
  const stamp = Date.now();
  await signIn(page, undefined, undefined, '/limits');
  await expect(page.getByRole('heading', { level: 1, name: 'Rate limits and IP blocks' })).toBeVisible();
  await waitForHydration(page);

  // A network with host bits set is explained, and nothing is set.
  const setForm = page.getByRole('region', { name: 'Set a rate limit' });
  await setForm.getByLabel('For', { exact: true }).selectOption('ip');
  await setForm.getByLabel('Address or network (for an address)').fill('198.51.100.7/24');
  await setForm.getByLabel('Requests / minute').fill('60');
  await setForm.getByLabel('Burst').fill('2');
  await setForm.getByLabel('Reason').fill(`e2e: scraper network ${stamp}`);
  await setForm.getByRole('button', { name: 'Set limit' }).click();
  await expect(setForm.getByText(`did you mean ${NETWORK}?`)).toBeVisible();
  await expect(page.getByTestId('overrides').getByRole('row').filter({ hasText: NETWORK })).toHaveCount(0);

  await setForm.getByLabel('Address or network (for an address)').fill(NETWORK);
  await setForm.getByRole('button', { name: 'Set limit' }).click();
  const override = page.getByTestId('overrides').getByRole('row').filter({ hasText: `ip ${NETWORK}` });
  await expect(override).toContainText('60 / min, burst 2');
  await expect(override).toContainText(`e2e: scraper network ${stamp}`);
  await expect(override).toContainText('no expiry');

  // A block needs a reason.
  const blockForm = page.getByRole('region', { name: 'Block an address' });
  await blockForm.getByLabel('Address or network').fill(NETWORK);
  await blockForm.getByLabel('Expires after (minutes, optional)').fill('30');
  await blockForm.getByRole('button', { name: 'Block' }).click();
  await expect(blockForm.getByText('Say why: the reason goes into the audit log.')).toBeVisible();
  await blockForm.getByLabel('Reason').fill(`e2e: credential stuffing ${stamp}`);
  await blockForm.getByRole('button', { name: 'Block' }).click();
  const block = page.getByTestId('blocks').getByRole('row').filter({ hasText: NETWORK });
  await expect(block).toContainText(`e2e: credential stuffing ${stamp}`);
  await expect(block.getByTestId('countdown')).toContainText('expires in');
  await expect(block.getByRole('timer')).toHaveText(/^(29|30) min \d\d s$/);

  // The block is of that network only: this address still gets through.
  const token = await mintToken(page, 'demo', `e2e limits ${stamp}`);
  expect((await whoami(request, token)).status).toBe(200);

  // Lifted, each with its reason.
  await page.goto('/limits');
  await waitForHydration(page);
  await override.getByLabel('Reason for removing').fill('e2e: scraping stopped');
  await override.getByRole('button', { name: 'Remove' }).click();
  await expect(override).toHaveCount(0);
  await block.getByLabel('Reason for unblocking').fill('e2e: attack over');
  await block.getByRole('button', { name: 'Unblock' }).click();
  await expect(block).toHaveCount(0);

  // Both changes are in the audit log, each with its lifting.
  await page.goto(`/audit?target=${encodeURIComponent(`rate_limit:ip:${NETWORK}`)}&window=15m`);
  await expect(page.getByTestId('audit-table')).toContainText('rate_limit.set');
  await expect(page.getByTestId('audit-table')).toContainText('rate_limit.removed');
  await page.goto(`/audit?target=${encodeURIComponent(`ip:${NETWORK}`)}&window=15m`);
  await expect(page.getByTestId('audit-table')).toContainText('ip_block.added');
  await expect(page.getByTestId('audit-table')).toContainText('ip_block.removed');
  // The 422s are the refused network and the missing reason.
  expect(problems.filter((p) => !p.includes('422'))).toEqual([]);
});

test("a client's override refuses its token past the burst with 429 and Retry-After, until removed", async ({ page, request }) => {
  await signIn(page, undefined, undefined, '/t/demo/agent-ops');
  await waitForHydration(page);
  const name = `${CLIENT_PREFIX}${Date.now()}`;
  await page.getByLabel('Name').fill(name);
  await page.getByRole('button', { name: 'Create client' }).click();
  await expect(page.getByTestId('clients')).toContainText(name);
  const token = await mintToken(page, 'demo', `e2e limited ${Date.now()}`, `Client: ${name}`);

  await page.goto('/limits');
  await waitForHydration(page);
  const setForm = page.getByRole('region', { name: 'Set a rate limit' });
  await setForm.getByLabel('For', { exact: true }).selectOption('client');
  await setForm.getByLabel('Tenant slug').fill('demo');
  await setForm.getByLabel('Client name (for a client)').fill(name);
  // One a second, two at once: a third call straight after is over the limit.
  await setForm.getByLabel('Requests / minute').fill('60');
  await setForm.getByLabel('Burst').fill('2');
  await setForm.getByLabel('Reason').fill('e2e: runaway retry loop');
  await setForm.getByRole('button', { name: 'Set limit' }).click();
  const override = page.getByTestId('overrides').getByRole('row').filter({ hasText: `client demo/${name}` });
  await expect(override).toContainText('60 / min, burst 2');

  expect((await whoami(request, token)).status).toBe(200);
  expect((await whoami(request, token)).status).toBe(200);
  const limited = await whoami(request, token);
  expect(limited).toMatchObject({ status: 429, code: 'RATE_LIMITED' });
  expect(limited.retryAfter).toMatch(/^[1-9]\d*$/);

  await override.getByLabel('Reason for removing').fill('e2e: loop fixed');
  await override.getByRole('button', { name: 'Remove' }).click();
  await expect(override).toHaveCount(0);
  // Back on the default limit at once.
  expect((await whoami(request, token)).status).toBe(200);
});
