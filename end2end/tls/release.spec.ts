import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as zlib from 'node:zlib';
import { signIn, totpCode } from '../tests/helpers';

// The release build (dist/) served as production serves it: behind Caddy with TLS, as the
// unprivileged database role, in production mode. scripts/tls-test.sh sets all of this up.
const base = new URL(need('TLS_BASE_URL'));
const direct = new URL(need('DIRECT_URL'));
const ca = fs.readFileSync(need('CADDY_ROOT_CA'));
const admin = { email: need('TLS_ADMIN_EMAIL'), password: need('TLS_ADMIN_PASSWORD') };
const serviceToken = need('TLS_SERVICE_TOKEN');
const tenant = need('TLS_TENANT');
/** The goal (issue 13): 400 KB gzipped for what the first page needs. Pages are lazy routes,
 * so that is the shell plus the page's own chunks (README, The bundle). */
const GZIP_GOAL = 400_000;
/** The whole front end, every page group's chunks included, gzipped: its size after the tenant
 * and signing-key pages of issue 16 (1,103 KB; 1,035 KB after the passkeys of issue 15, 865 KB
 * when the routes were split) and about 5% more, so it cannot grow unnoticed. Lower it as it
 * shrinks. */
const GZIP_BUDGET = Number(process.env.BUNDLE_GZIP_BUDGET ?? 1_340_000);
/** The release folder's built files (scripts/tls-test.sh). */
const pkgDir = need('TLS_SITE_PKG');
const figures: Record<string, unknown> = { shell: {} };
// Production requires a second factor: the HTTPS sign-in test enrols the admin's
// authenticator app at its first sign-in, and the later tests reuse its signed-in state (a
// code is accepted once, so each sign-in would need the next 30-second step).
let signedInState: Awaited<ReturnType<import('@playwright/test').BrowserContext['storageState']>> | undefined;

function signedIn() {
  if (!signedInState) throw new Error('the HTTPS sign-in test runs first and signs the admin in');
  return signedInState;
}

function need(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set (run scripts/tls-test.sh)`);
  return value;
}

type Answer = { status: number; headers: http.IncomingHttpHeaders; body: Buffer };

/** A request through the proxy, verifying Caddy's certificate against its own CA. */
function viaProxy(path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: base.hostname.replace(/^\[|\]$/g, ''), port: base.port, path, ca, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A request that skips the proxy: straight to the console, from another loopback address. */
function skippingProxy(method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: direct.hostname, port: direct.port, path, method, headers, localAddress: '127.0.0.2' },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

/** Every built file of the front end, as its address: the main module, its loader, the
 * stylesheet and each page's chunks (not the .br and .gz copies beside them). */
function frontEndPaths(): string[] {
  return fs
    .readdirSync(pkgDir)
    .filter((name) => !/\.(br|gz)$/.test(name))
    .map((name) => `/pkg/${name}`);
}

/** The front-end files a page load fetched, as addresses (from the browser's resource timing). */
async function pkgFetched(page: Page): Promise<string[]> {
  const paths = await page.evaluate(() =>
    (performance.getEntriesByType('resource') as PerformanceResourceTiming[])
      .map((r) => new URL(r.name).pathname)
      .filter((path) => path.startsWith('/pkg/')),
  );
  return [...new Set(paths)];
}

/** What `paths` weigh compressed, as the proxy sends them: gzip, and brotli (what browsers take). */
async function compressedSize(paths: string[]): Promise<{ files: number; gzip: number; brotli: number }> {
  let gzip = 0;
  let brotli = 0;
  for (const path of paths) {
    gzip += (await viaProxy(path, { 'accept-encoding': 'gzip' })).body.length;
    brotli += (await viaProxy(path, { 'accept-encoding': 'br' })).body.length;
  }
  return { files: paths.length, gzip, brotli };
}

/** Makes every page of `context` note when it finished hydrating (the app sets body[data-hydrated]). */
async function recordHydration(context: BrowserContext): Promise<void> {
  await context.addInitScript(() => {
    const w = window as unknown as { __hydratedAt?: number };
    new MutationObserver((_, observer) => {
      if (document.body?.dataset.hydrated === 'true') {
        w.__hydratedAt = performance.now();
        observer.disconnect();
      }
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-hydrated'] });
  });
}

/** When the page finished hydrating, in ms from navigation start (see recordHydration). */
async function timeToInteractive(page: Page): Promise<number> {
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  return page.evaluate(() => (window as unknown as { __hydratedAt: number }).__hydratedAt);
}

/** Bytes this page load took over the network (0 for what came from the cache). */
async function bytesTransferred(page: Page): Promise<{ total: number; pkg: number; pkgFromCache: number }> {
  return page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation') as PerformanceNavigationTiming[];
    const res = performance.getEntriesByType('resource') as PerformanceResourceTiming[];
    const pkg = res.filter((r) => new URL(r.name).pathname.startsWith('/pkg/'));
    return {
      total: [...nav, ...res].reduce((sum, r) => sum + r.transferSize, 0),
      pkg: pkg.reduce((sum, r) => sum + r.transferSize, 0),
      pkgFromCache: pkg.filter((r) => r.transferSize === 0 && r.decodedBodySize > 0).length,
    };
  });
}

test.afterAll(() => {
  const out = process.env.TLS_FIGURES;
  if (out) fs.writeFileSync(out, JSON.stringify(figures, null, 2));
  console.log(`figures: ${JSON.stringify(figures)}`);
});

test('the front end is small, precompressed, hashed and cached for a year; pages are not', async () => {
  const paths = frontEndPaths();
  // The shell's files, and the pages' chunks.
  expect(paths.filter((p) => /\/staff_console\.[^/]+\.(js|wasm|css)$/.test(p))).toHaveLength(3);
  expect(paths.some((p) => /\/split_audit\.[^/]+\.wasm$/.test(p))).toBe(true);
  let gzipTotal = 0;
  let brotliTotal = 0;
  for (const path of paths) {
    // Hashed names: a new build has new names, so a year of caching is safe.
    expect(path).toMatch(/\.[A-Za-z0-9_-]{22}\.(js|wasm|css|json)$/);
    const raw = await viaProxy(path, { 'accept-encoding': 'identity' });
    const gz = await viaProxy(path, { 'accept-encoding': 'gzip' });
    const br = await viaProxy(path, { 'accept-encoding': 'br, gzip' });
    for (const answer of [raw, gz, br]) {
      expect(answer.status).toBe(200);
      expect(answer.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(answer.headers['vary']).toMatch(/accept-encoding/i);
    }
    expect(raw.headers['content-encoding']).toBeUndefined();
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(br.headers['content-encoding']).toBe('br');
    // What was sent decodes to the file itself.
    expect(zlib.gunzipSync(gz.body).equals(raw.body)).toBe(true);
    expect(zlib.brotliDecompressSync(br.body).equals(raw.body)).toBe(true);
    if (!/\/(split_|chunk_|__wasm_split_manifest)/.test(path)) {
      (figures.shell as Record<string, unknown>)[path.replace(/\.[A-Za-z0-9_-]{22}\./, '.')] = {
        raw: raw.body.length,
        gzip: gz.body.length,
        brotli: br.body.length,
      };
    }
    gzipTotal += gz.body.length;
    brotliTotal += br.body.length;
  }
  figures.wholeFrontEnd = { files: paths.length, gzip: gzipTotal, brotli: brotliTotal };
  // The budget: the whole front end, gzipped.
  expect(
    gzipTotal,
    `the whole front end is ${gzipTotal} bytes gzipped: over the budget of ${GZIP_BUDGET}`,
  ).toBeLessThanOrEqual(GZIP_BUDGET);

  // A name that is not there is not cached, and a page is never cached nor compressed.
  const missing = await viaProxy('/pkg/staff_console.AAAAAAAAAAAAAAAAAAAAAA.wasm');
  expect(missing.status).toBe(404);
  expect(missing.headers['cache-control']).toBe('no-store');
  const page = await viaProxy('/sign-in', { 'accept-encoding': 'br, gzip' });
  expect(page.headers['cache-control']).toBe('no-store');
  expect(page.headers['content-encoding']).toBeUndefined();
  // HSTS, from the console through the proxy.
  expect(page.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains');
});

test('the first page loads the shell and its own page, not the others', async ({ browser }) => {
  const context = await browser.newContext();
  await recordHydration(context);
  const page = await context.newPage();
  await page.goto('/sign-in');
  const tti = await timeToInteractive(page);
  const fetched = await pkgFetched(page);
  // The sign-in page's chunk came, named by the server's HTML so it loads with the main module;
  // the console's pages did not.
  expect(fetched.some((p) => p.includes('/split_sign_in.'))).toBe(true);
  for (const other of ['overview', 'tenant', 'audit', 'platform']) {
    expect(fetched.some((p) => p.includes(`/split_${other}.`))).toBe(false);
  }
  const size = await compressedSize(fetched);
  figures.firstPage = { ...size, timeToInteractiveMs: Math.round(tti) };
  expect(
    size.gzip,
    `the first page needs ${size.gzip} bytes of front end gzipped: over the goal of ${GZIP_GOAL}`,
  ).toBeLessThanOrEqual(GZIP_GOAL);
  await context.close();
});

test('signing in over HTTPS sets a __Host- cookie, and a change is audited with the browser’s address', async ({ page, context }) => {
  // The switch stream, opened through the proxy before the change.
  const events: string[] = [];
  const stream = https.get(
    {
      host: base.hostname.replace(/^\[|\]$/g, ''),
      port: base.port,
      path: `/api/v1/switches/stream?tenant=${tenant}`,
      ca,
      headers: { authorization: `Bearer ${serviceToken}`, accept: 'text/event-stream' },
    },
    (res) => {
      expect(res.statusCode).toBe(200);
      let buffered = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let end;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const data = buffered
            .slice(0, end)
            .split('\n')
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trim())
            .join('');
          if (data) events.push(data);
          buffered = buffered.slice(end + 2);
        }
      });
    },
  );
  try {
    const captchaOff = () =>
      events.some((e) => (JSON.parse(e) as { switches: Record<string, { value: unknown }> }).switches.TURNSTILE_DISABLED?.value === true);
    await expect.poll(() => events.length, { message: 'the stream sends the document at once' }).toBeGreaterThan(0);
    expect(captchaOff()).toBe(false);

    const response = await page.goto('/sign-in');
    expect(response?.headers()['strict-transport-security']).toBe('max-age=63072000; includeSubDomains');
    await signIn(page, admin.email, admin.password, '/sign-in');
    // The first sign-in opens nothing but setting up a second factor.
    await expect(page).toHaveURL(/\/account\/security/);
    await expect(page.getByTestId('enrol-required')).toBeVisible();
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
    const secret = (await page.getByTestId('totp-secret').textContent())!.trim();
    await page.getByLabel('Code from the app').fill(totpCode(secret, 0));
    await page.getByRole('button', { name: 'Confirm' }).click();
    await expect(page.getByTestId('recovery-codes').getByRole('listitem')).toHaveCount(10);
    await page.getByTestId('enrol-continue').click();
    await expect(page.getByRole('navigation', { name: 'Panels' })).toBeVisible();

    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === '__Host-sc_session');
    expect(session, `cookies: ${cookies.map((c) => c.name).join(', ')}`).toBeDefined();
    expect(session).toMatchObject({ secure: true, httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(cookies.some((c) => c.name === 'sc_session')).toBe(false);

    // One audited change: the captcha off, globally.
    await page.goto('/switches');
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    await page.getByLabel('Switch', { exact: true }).selectOption('TURNSTILE_DISABLED');
    await page.getByRole('radio', { name: 'on / true' }).check();
    await page.getByLabel('Reason', { exact: true }).fill('tls test: captcha provider outage');
    await page.getByLabel('Type TURNSTILE_DISABLED to confirm').fill('TURNSTILE_DISABLED');
    const changedAt = Date.now();
    await page.getByRole('button', { name: 'Set TURNSTILE_DISABLED captcha off' }).click();
    await expect(page.getByTestId('switch-TURNSTILE_DISABLED').getByTestId('global-value')).toContainText('captcha off');

    // The stream carried it through the proxy at once, not when a buffer filled.
    await expect.poll(captchaOff, { message: 'the change arrives on the stream', timeout: 5_000 }).toBe(true);
    figures.streamDelayMs = Date.now() - changedAt;

    // The audit log has the browser's address (::1, the proxy's client), not the proxy's.
    await page.goto('/audit?ip=::1&outcome=success');
    const table = page.getByTestId('audit-table');
    await expect(table).toContainText('switch.flipped');
    await expect(table).toContainText('staff.sign_in');
    await page.goto('/audit?ip=127.0.0.1');
    await expect(page.getByText('No events match')).toBeVisible();
    signedInState = await context.storageState();
  } finally {
    stream.destroy();
  }
});

test('a request that skips the proxy is judged by its own address', async ({ browser }) => {
  // Straight to the console from 127.0.0.2 (not a trusted proxy), claiming another client
  // address and bringing its own request id.
  const signInPage = await skippingProxy('GET', '/sign-in', {});
  const action = /<form[^>]*action="([^"]+)"/.exec(signInPage.body.toString('utf8'))?.[1];
  expect(action, 'the sign-in form posts without JavaScript').toBeTruthy();
  const planted = 'planted-request-id';
  const refused = await skippingProxy(
    'POST',
    action!,
    {
      origin: base.origin,
      'content-type': 'application/x-www-form-urlencoded',
      'x-forwarded-for': '203.0.113.66',
      'x-request-id': planted,
    },
    new URLSearchParams({ email: admin.email, password: 'not the password at all', next: '' }).toString(),
  );
  // Its request id is not taken: the console gives it one of its own.
  expect(refused.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);

  const reader = await browser.newContext({ storageState: signedIn() });
  const page = await reader.newPage();
  await page.goto('/audit?ip=127.0.0.2&outcome=deny');
  await expect(page.getByTestId('audit-table')).toContainText('staff.sign_in');
  await page.goto('/audit?ip=203.0.113.66');
  await expect(page.getByText('No events match')).toBeVisible();
  await reader.close();
});

test('a panel loads once, then comes from the cache', async ({ browser }) => {
  // Signed in, with an empty cache: the first load of a panel.
  const state = signedIn();

  const context = await browser.newContext({ storageState: state });
  await recordHydration(context);
  const page = await context.newPage();
  await page.goto('/switches');
  await expect(page.getByRole('heading', { level: 1, name: 'Kill switches' })).toBeVisible();
  const firstTti = await timeToInteractive(page);
  const first = await bytesTransferred(page);
  const firstFiles = await pkgFetched(page);
  expect(first.pkg).toBeGreaterThan(0);

  await page.reload();
  await expect(page.getByRole('heading', { level: 1, name: 'Kill switches' })).toBeVisible();
  const reloadTti = await timeToInteractive(page);
  const reload = await bytesTransferred(page);
  // Nothing of the front end travels again: the hashed files are used from the cache.
  expect(reload.pkg).toBe(0);
  expect(reload.pkgFromCache).toBeGreaterThanOrEqual(2);
  figures.panelFirstLoad = {
    bytes: first.total,
    frontEndBytes: first.pkg,
    frontEnd: await compressedSize(firstFiles),
    timeToInteractiveMs: Math.round(firstTti),
  };
  figures.panelCachedReload = { bytes: reload.total, frontEndBytes: reload.pkg, timeToInteractiveMs: Math.round(reloadTti) };
  await context.close();
});

test('on a slow connection the first page and a panel become interactive (figures)', async ({ browser }) => {
  test.setTimeout(120_000);
  // A hotel connection: 2 Mbit/s down, 1 Mbit/s up, 150 ms round trips (Chromium's own
  // throttling, per request). A figure for the README, not a pass/fail threshold.
  const slow = { offline: false, latency: 150, downloadThroughput: 250_000, uploadThroughput: 125_000 };
  const state = signedIn();

  const measured: Record<string, unknown> = {};
  for (const [name, path, storageState] of [
    ['signInPage', '/sign-in', undefined],
    ['panel', '/switches', state],
  ] as const) {
    const context = await browser.newContext({ storageState });
    await recordHydration(context);
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', slow);
    await page.goto(path, { timeout: 60_000 });
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true', { timeout: 60_000 });
    const tti = await page.evaluate(() => (window as unknown as { __hydratedAt: number }).__hydratedAt);
    measured[name] = { timeToInteractiveMs: Math.round(tti), transferred: (await bytesTransferred(page)).total };
    await context.close();
  }
  figures.slowConnection = measured;
});
