import { test, expect, type Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { seedDetailPages, signIn, waitForHydration } from './helpers';

/** Serious and critical WCAG 2.1 A/AA violations on the page as it is now, one line each. */
async function violations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page })
    .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'])
    .analyze();
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .flatMap((v) => v.nodes.map((n) => `${v.id} (${v.impact}) at ${n.target.join(' ')}: ${v.help}`));
}

test('every panel and detail page has no serious or critical accessibility violation', async ({ page }) => {
  test.setTimeout(120_000);
  const found: Record<string, string[]> = {};

  await page.goto('/sign-in');
  await waitForHydration(page);
  found['/sign-in'] = await violations(page);

  await signIn(page);
  const { tokenId, clientPath, eventPath } = await seedDetailPages(page, 'a11y');

  const pages = [
    '/',
    '/t/demo',
    '/t/demo/integrations',
    `/t/demo/integrations/${tokenId}`,
    '/t/demo/agent-ops',
    clientPath,
    '/audit',
    '/audit?outcome=deny&window=24h',
    eventPath,
    '/switches',
    '/limits',
    '/pepper',
    '/staff',
    '/account/password',
    '/t/no-such-tenant',
    '/no-such-page',
  ];
  for (const path of pages) {
    await page.goto(path);
    await waitForHydration(page);
    // Loaded: the page's heading, or the notice an error page shows instead.
    await expect(page.locator('h1, main [role=alert]').first(), path).toBeVisible();
    found[path] = await violations(page);
  }
  const failing = Object.fromEntries(Object.entries(found).filter(([, v]) => v.length > 0));
  expect(failing).toEqual({});
});
