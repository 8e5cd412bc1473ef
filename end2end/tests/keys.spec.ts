import { test, expect, type APIRequestContext, type Page } from '@playwright/test';
import { signIn, waitForHydration, watchConsole } from './helpers';

/** The kids a tenant's JWKS publishes now. */
async function published(request: APIRequestContext, slug: string): Promise<string[]> {
  const res = await request.get(`/a/${slug}/.well-known/jwks.json`);
  expect(res.status()).toBe(200);
  expect(res.headers()['cache-control']).toBe('public, max-age=300');
  return ((await res.json()).keys as { kid: string }[]).map((k) => k.kid);
}

/** Creates a tenant through the page and returns its slug. */
async function createTenant(page: Page, label: string): Promise<string> {
  const slug = `e2e-${label}-${Date.now()}`;
  await page.goto('/');
  await waitForHydration(page);
  await page.getByRole('link', { name: 'Create a tenant' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Create a tenant' })).toBeVisible();
  await waitForHydration(page);
  // A bad slug is refused beside its field, and nothing is created.
  await page.getByLabel(/^Slug/).fill('Bad Slug');
  await page.getByLabel('Name', { exact: true }).fill(`E2E ${label}`);
  await page.getByRole('button', { name: 'Create tenant' }).click();
  await expect(page.locator('#tenant-slug-error')).toContainText('lowercase letters, digits and hyphens only');
  await page.getByLabel(/^Slug/).fill(slug);
  await page.getByRole('button', { name: 'Create tenant' }).click();
  await expect(page.getByRole('status')).toContainText(`Tenant “${slug}” created with an active signing key.`);
  return slug;
}

function row(page: Page, kid: string) {
  return page.getByTestId('signing-keys').locator(`tr[data-kid="${kid}"]`);
}

test('an admin creates a tenant; it signs with one active key, shown in its settings and published in its JWKS', async ({ page, request }) => {
  const problems = watchConsole(page);
  await signIn(page);
  const slug = await createTenant(page, 'tenant');
  await page.getByRole('link', { name: 'Open its settings' }).click();
  const summary = page.getByTestId('tenant-summary');
  await expect(summary).toContainText(`E2E tenant`);
  await expect(summary).toContainText('agent-api');
  const kids = await published(request, slug);
  expect(kids).toHaveLength(1);
  await expect(summary).toContainText(kids[0]);

  // Settings: a bad audience is refused at its field; a good change is saved and shown.
  await waitForHydration(page);
  await page.getByLabel('Allowed audiences (comma-separated)').fill('agent-api, Not Allowed');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await expect(page.locator('#settings-audiences-error')).toContainText('an audience uses lowercase letters');
  await page.getByLabel('Allowed audiences (comma-separated)').fill('agent-api, billing');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Settings saved.' })).toBeVisible();
  await expect(summary).toContainText('agent-api, billing');
  const config = await (await request.get(`/a/${slug}/.well-known/openid-configuration`)).json();
  expect(config.audiences_supported).toEqual(['agent-api', 'billing']);
  expect(config.jwks_uri).toMatch(new RegExp(`/a/${slug}/\\.well-known/jwks\\.json$`));
  // The two refusals above (a bad slug, a bad audience) are the only failed requests.
  expect(problems.filter((p) => !p.includes('status of 422'))).toEqual([]);
});

test('keys are staged, activated in an emergency, revoked by kid and all revoked at once', async ({ page, request }) => {
  const problems = watchConsole(page);
  await signIn(page);
  const slug = await createTenant(page, 'keys');
  const [first] = await published(request, slug);
  await page.goto(`/t/${slug}/keys`);
  await expect(page.getByRole('heading', { level: 1, name: 'Signing keys' })).toBeVisible();
  await waitForHydration(page);
  await expect(row(page, first)).toContainText('active');

  // Stage: published at once, not signing.
  const stage = page.getByRole('region', { name: 'Stage a new key' });
  await stage.getByLabel('Reason').fill('e2e: scheduled rotation');
  await stage.getByRole('button', { name: 'Stage a key' }).click();
  await expect(page.getByTestId('key-done')).toContainText('is staged');
  const kids = await published(request, slug);
  expect(kids).toHaveLength(2);
  const second = kids.find((k) => k !== first)!;
  await expect(row(page, second)).toContainText('staged');

  // Activating at once is refused without the emergency, then done with it.
  await row(page, second).getByRole('button', { name: 'Activate' }).click();
  const activate = page.getByRole('region', { name: 'Activate a staged key' });
  await expect(activate).toContainText('needs an emergency activation');
  await activate.getByLabel('Reason').fill('e2e: key leaked');
  await activate.getByRole('button', { name: 'Activate this key' }).click();
  await expect(activate.getByRole('alert')).toContainText('JWKS max-age 300 s');
  await activate.getByLabel(/^Emergency activation/).check();
  await activate.getByLabel(`Type ${slug} to confirm`).fill(slug);
  await activate.getByRole('button', { name: 'Activate this key' }).click();
  await expect(page.getByTestId('key-done')).toContainText(`Key ${second} is now active.`);
  await expect(row(page, second)).toContainText('active');
  await expect(row(page, first)).toContainText('retired');
  await expect(row(page, first).getByTestId('countdown')).toContainText('removed in');
  expect((await published(request, slug)).sort()).toEqual([first, second].sort());

  // Revoke the retired key by kid: the kid typed, then it is unpublished at once.
  await row(page, first).getByRole('button', { name: 'Revoke' }).click();
  const revoke = page.getByRole('region', { name: 'Revoke by kid' });
  await expect(revoke.getByTestId('revoke-preview')).toContainText(`${first} (retired)`);
  await revoke.getByLabel('Reason').fill('e2e: retired key seen in a paste');
  await revoke.getByLabel(`Type ${first} to confirm`).fill(first.slice(0, 10));
  await revoke.getByRole('button', { name: 'Revoke this key' }).click();
  await expect(revoke.locator('#revoke-confirm-error')).not.toBeEmpty();
  expect(await published(request, slug)).toContain(first);
  await revoke.getByLabel(`Type ${first} to confirm`).fill(first);
  await revoke.getByRole('button', { name: 'Revoke this key' }).click();
  await expect(page.getByTestId('key-done')).toContainText(`Revoked: ${first}.`);
  await expect(row(page, first)).toContainText('revoked');
  expect(await published(request, slug)).toEqual([second]);

  // Revoke all: a fresh key replaces every published one.
  const all = page.getByRole('region', { name: 'Revoke all keys' });
  await all.getByRole('button', { name: 'Preview what it revokes' }).click();
  await expect(all.getByTestId('revoke-preview')).toContainText('1 key(s) would be unpublished');
  await expect(all.getByTestId('revoke-preview')).toContainText('a fresh key is activated in its place');
  await all.getByLabel('Reason').fill('e2e: signing key compromise');
  await all.getByLabel(`Type ${slug} to confirm`).fill(slug);
  await all.getByRole('button', { name: 'Revoke 1 key(s) and activate a fresh one' }).click();
  await expect(page.getByTestId('key-done')).toContainText(`Revoked: ${second}.`);
  const fresh = await published(request, slug);
  expect(fresh).toHaveLength(1);
  expect([first, second]).not.toContain(fresh[0]);
  await expect(row(page, fresh[0])).toContainText('active');
  // The refusals above (a bad slug, an early activation, a mistyped kid) are the only
  // failed requests.
  expect(problems.filter((p) => !/status of (409|422)/.test(p))).toEqual([]);
});

test('every instance refreshes its key set and verifies that a revoked key is refused and the active one accepted', async ({ page, request }) => {
  const problems = watchConsole(page);
  await signIn(page);
  const slug = await createTenant(page, 'instances');
  const [first] = await published(request, slug);
  await page.goto(`/t/${slug}/keys`);
  await expect(page.getByRole('heading', { level: 1, name: 'Signing keys' })).toBeVisible();
  await waitForHydration(page);
  const instances = page.getByRole('region', { name: 'Instances' });
  // The server under test lists itself with the key epoch it holds.
  await expect(instances.getByTestId('instances').locator('tbody tr')).not.toHaveCount(0);

  // Revoke the active key: a fresh one replaces it.
  const all = page.getByRole('region', { name: 'Revoke all keys' });
  await all.getByRole('button', { name: 'Preview what it revokes' }).click();
  await all.getByLabel('Reason').fill('e2e: JWKS compromise');
  await all.getByLabel(`Type ${slug} to confirm`).fill(slug);
  await all.getByRole('button', { name: 'Revoke 1 key(s) and activate a fresh one' }).click();
  await expect(page.getByTestId('key-done')).toContainText(`Revoked: ${first}.`);
  const [fresh] = await published(request, slug);

  // Refresh: every live instance answers with the epoch it reloaded.
  await instances.getByRole('button', { name: 'Refresh on all instances' }).click();
  const answer = instances.getByTestId('instance-request');
  await expect(answer).toHaveAttribute('data-kind', 'refresh');
  await expect(answer.getByTestId('instance-request-summary')).toContainText(/Refresh requested by .*: (\d+) of \1 instance\(s\) answered\./);
  await expect(answer.getByTestId('instance-ack').first()).toContainText('refreshed');
  await expect(answer.getByTestId('instance-ack').first()).toContainText('key epoch');

  // Verify: on every instance the revoked key's token is refused and the fresh key's accepted.
  await instances.getByRole('button', { name: 'Verify on all instances' }).click();
  await expect(answer).toHaveAttribute('data-kind', 'verify');
  await expect(answer.getByTestId('instance-request-summary')).toContainText('Every instance passed.');
  const probes = answer.getByTestId('instance-ack').first().getByTestId('probe');
  await expect(probes.filter({ hasText: first })).toContainText('expected refused, got DELEGATED_KEY_REVOKED');
  await expect(probes.filter({ hasText: fresh })).toContainText('expected accepted, got accepted');
  await expect(probes.filter({ hasText: first })).toHaveAttribute('data-passed', 'true');
  // The bad slug the tenant form refused is the only failed request.
  expect(problems.filter((p) => !p.includes('status of 422'))).toEqual([]);
});
