import { test, expect } from '@playwright/test';
import { readFile } from 'node:fs/promises';
import { signIn, waitForHydration, watchConsole } from './helpers';

test('an auditor filters to deny events in a window, opens one, pivots on its IP and downloads the CSV', async ({ page, request }) => {
  const problems = watchConsole(page);
  // A refusal at the gateway: a malformed token is denied and audited.
  const refused = await request.get('/agent/v1/whoami', { headers: { Authorization: 'Bearer mf_pat_v1.nope.nope' } });
  expect(refused.status()).toBe(401);

  await signIn(page, undefined, undefined, '/audit');
  await expect(page.getByRole('heading', { level: 1, name: 'Audit log' })).toBeVisible();
  await waitForHydration(page);
  await page.getByLabel('deny', { exact: true }).check();
  await page.getByLabel('Source', { exact: true }).selectOption('agent_api');
  await page.getByLabel('Window', { exact: true }).selectOption('15m');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/outcome=deny/);
  await expect(page).toHaveURL(/window=15m/);
  // The gateway's ledger writes refusals within about a second.
  const table = page.getByTestId('audit-table');
  await expect(async () => {
    await page.reload();
    await expect(table).toContainText('token.failed_auth', { timeout: 1000 });
  }).toPass({ timeout: 15_000 });
  await expect(page.getByTestId('histogram')).toBeVisible();
  await expect(table.locator('tbody tr').first()).toContainText('deny');

  // Open the event: every field, times in local time with UTC on hover.
  await table.getByRole('link', { name: /event \d+$/ }).first().click();
  const detail = page.getByTestId('event-detail');
  await expect(detail).toContainText('token.failed_auth');
  await expect(detail).toContainText('agent_api');
  await expect(page.locator('time[title$="UTC"]').first()).toBeVisible();

  // Pivot: everything from the same address within ±15 minutes.
  await page.getByTestId('pivot-ip').click();
  await expect(page).toHaveURL(/ip=127\.0\.0\.1/);
  await expect(page.getByTestId('audit-table')).toContainText('token.failed_auth');

  // Back to the deny view and download it as CSV, with progress shown.
  await page.goBack();
  await page.goBack();
  await expect(page).toHaveURL(/outcome=deny/);
  await waitForHydration(page);
  const download = page.waitForEvent('download');
  await page.getByTestId('export-csv').click();
  const file = await download;
  expect(file.suggestedFilename()).toMatch(/^audit-all-\d{8}T\d{6}Z-\d{8}T\d{6}Z\.csv$/);
  const text = await readFile(await file.path(), 'utf8');
  const lines = text.trim().split('\r\n');
  expect(lines[0]).toBe('seq,ts,tenant,source,actor,actor_name,action,outcome,code,target,ip,user_agent,request_id,incident_id,reason,details,hash');
  expect(lines.length).toBeGreaterThan(1);
  expect(lines.slice(1).every((l) => l.includes(',agent_api,') && l.includes(',deny,'))).toBe(true);
  await expect(page.getByTestId('export-progress')).toContainText('Downloaded');
  expect(problems).toEqual([]);
});
