import { test, expect, type Page } from '@playwright/test';
import { seedDetailPages, signIn, waitForHydration, watchConsole } from './helpers';

/** A small seeded generator, so a failing run can be replayed with E2E_NAV_SEED. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A client-side navigation, as a click on a link does (the router handles it; no reload). */
async function follow(page: Page, href: string): Promise<void> {
  await page.evaluate((to) => {
    const a = document.createElement('a');
    a.href = to;
    document.body.appendChild(a);
    a.click();
    a.remove();
  }, href);
}

test('moving quickly between every panel, detail page and pivot while data loads leaves the page alive', async ({ page }) => {
  test.setTimeout(120_000);
  const problems = watchConsole(page);
  await signIn(page);

  const { tokenId, clientPath, eventPath } = await seedDetailPages(page, 'nav');

  const now = Date.now();
  const iso = (ms: number) => new Date(ms).toISOString().slice(0, 19) + 'Z';
  const targets = [
    '/',
    '/t/demo',
    '/t/demo/integrations',
    `/t/demo/integrations/${tokenId}`,
    '/t/demo/integrations?status=revoked',
    '/t/demo/agent-ops',
    clientPath,
    '/t/globex/agent-ops',
    '/audit',
    '/audit?outcome=deny&window=15m',
    eventPath,
    `/audit?ip=127.0.0.1&from=${iso(now - 15 * 60_000)}&to=${iso(now + 15 * 60_000)}`,
    '/audit?action=staff.*&window=24h',
    '/switches',
    '/limits',
    '/pepper',
    '/staff',
    '/account/password',
  ];

  // Every server function answers late, by a different amount each time: pages are left
  // while their data is still loading, in every order.
  const seed = Number(process.env.E2E_NAV_SEED ?? Date.now() % 100_000);
  const random = generator(seed);
  await page.route('**/api/**', async (route) => {
    await new Promise((r) => setTimeout(r, Math.floor(random() * 250)));
    await route.continue().catch(() => {});
  });

  const visited = new Set<string>();
  const steps = 80;
  for (let i = 0; i < steps; i++) {
    // Every target once, in order, then a random walk with back and forward.
    const roll = i < targets.length ? 1 : random();
    if (roll < 0.15) {
      await page.goBack();
    } else if (roll < 0.22) {
      await page.goForward();
    } else {
      const to = targets[i < targets.length ? i : Math.floor(random() * targets.length)];
      visited.add(to);
      await follow(page, to);
    }
    // Leave before, during or just after the page's data arrives.
    await page.waitForTimeout(Math.floor(random() * 180));
  }
  expect(visited.size).toBe(targets.length);

  // Still alive: the router, the data and the event handlers all answer.
  await page.unroute('**/api/**');
  await follow(page, '/audit');
  await expect(page.getByRole('heading', { level: 1, name: 'Audit log' })).toBeVisible();
  await expect(page.getByTestId('audit-table')).toBeVisible();
  await page.getByRole('navigation', { name: 'Panels' }).getByRole('link', { name: 'Kill switches' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Kill switches' })).toBeVisible();
  await expect(page.getByTestId('switches')).toBeVisible();
  expect(problems, `seed ${seed}`).toEqual([]);
});

test('a page whose code does not arrive says so, and the rest of the console keeps working', async ({ page }) => {
  const problems = watchConsole(page);
  await signIn(page);
  await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
  // The platform pages' chunk, fetched when the first of them is opened, never arrives.
  let offline = true;
  let refused = 0;
  await page.route(/\/pkg\/split_platform\.[^/]+\.wasm$/, (route) => {
    if (!offline) return route.continue();
    refused += 1;
    return route.abort('internetdisconnected');
  });
  await page.getByRole('link', { name: 'Rate limits & blocks' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'This page could not be loaded' })).toBeVisible();
  await expect(page.getByRole('alert')).toContainText('Nothing was changed');
  // Tried again before giving up.
  expect(refused).toBeGreaterThanOrEqual(2);

  // The WebAssembly is alive: a page of another chunk loads by client-side navigation.
  await page.getByRole('link', { name: 'Audit log' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Audit log' })).toBeVisible();
  // When the connection is back, the page that failed loads.
  offline = false;
  await page.getByRole('link', { name: 'Rate limits & blocks' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Rate limits and IP blocks' })).toBeVisible();
  const fatal = problems.filter((p) => /panicked|unreachable|RuntimeError/.test(p));
  expect(fatal).toEqual([]);
});

test('a first page whose code does not arrive stays readable and says it is not interactive', async ({ page }) => {
  const problems = watchConsole(page);
  await signIn(page);
  let offline = true;
  await page.route(/\/pkg\/split_platform\.[^/]+\.wasm$/, (route) =>
    offline ? route.abort('internetdisconnected') : route.continue(),
  );
  // Opened directly: the server's page arrives, its chunk never does.
  await page.goto('/switches');
  const banner = page.getByTestId('not-interactive');
  await expect(banner).toBeVisible();
  await expect(banner).toHaveAttribute('role', 'alert');
  await expect(banner).toContainText('could not be made interactive');
  // What the server sent is still there, and was not hydrated against a different page.
  await expect(page.getByRole('heading', { level: 1, name: 'Kill switches' })).toBeVisible();
  await expect(page.getByTestId('switches')).toBeVisible();
  await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');
  const fatalSoFar = problems.filter((p) => /panicked|unreachable|RuntimeError|hydration/i.test(p));
  expect(fatalSoFar, 'before the reload').toEqual([]);

  offline = false;
  await banner.getByRole('link', { name: 'Load the page again' }).click();
  await waitForHydration(page);
  await expect(page.getByTestId('not-interactive')).toHaveCount(0);
  await expect(page.getByRole('heading', { level: 1, name: 'Kill switches' })).toBeVisible();
  const fatal = problems.filter((p) => /panicked|unreachable|RuntimeError|hydration/i.test(p));
  expect(fatal).toEqual([]);
});
