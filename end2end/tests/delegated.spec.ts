import { test, expect, type APIRequestContext } from '@playwright/test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { mintToken, signIn, waitForHydration, watchConsole } from './helpers';

// Delegated agent tokens, checked by an independent JWT library (jose, not the console's
// own code) against the tenant's published JWKS: the evidence runbook 001 asks for.

async function exchange(request: APIRequestContext, slug: string, pat: string, extra: Record<string, string> = {}) {
  return request.post(`/a/${slug}/oauth/token`, {
    form: {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: pat,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      ...extra,
    },
  });
}

async function verifyIndependently(request: APIRequestContext, baseURL: string, slug: string, token: string) {
  const jwks = createLocalJWKSet(await (await request.get(`/a/${slug}/.well-known/jwks.json`)).json());
  const config = await (await request.get(`/a/${slug}/.well-known/openid-configuration`)).json();
  expect(config.issuer).toBe(`${new URL(baseURL).origin}/a/${slug}`);
  return jwtVerify(token, jwks, { issuer: config.issuer, audience: 'agent-api', typ: 'at+jwt', algorithms: ['ES256', 'EdDSA'] });
}

test('a PAT is exchanged for a delegated token that an independent library verifies, and revoking the keys refuses it at once', async ({ page, request, baseURL }) => {
  const problems = watchConsole(page);
  await signIn(page);
  const slug = `e2e-deleg-${Date.now()}`;
  await page.goto('/tenants/new');
  await waitForHydration(page);
  await page.getByLabel(/^Slug/).fill(slug);
  await page.getByLabel('Name', { exact: true }).fill('E2E delegated');
  await page.getByLabel('Signing algorithm').selectOption('EdDSA');
  await page.getByRole('button', { name: 'Create tenant' }).click();
  await expect(page.getByRole('status')).toContainText(`Tenant “${slug}” created`);

  const pat = await mintToken(page, slug, `e2e delegated ${Date.now()}`);
  const answer = await exchange(request, slug, pat, { scope: 'agent:read' });
  expect(answer.status()).toBe(200);
  const { access_token: token, expires_in, scope } = await answer.json();
  expect([expires_in, scope]).toEqual([600, 'agent:read']);

  const { payload, protectedHeader } = await verifyIndependently(request, baseURL!, slug, token);
  expect(protectedHeader.alg).toBe('EdDSA');
  expect(payload.tenant).toBe(slug);
  expect(payload.scope).toBe('agent:read');
  expect(payload.exp! - payload.iat!).toBe(600);

  const whoami = async (t: string) => {
    const res = await request.get('/agent/v1/whoami', { headers: { Authorization: `Bearer ${t}` } });
    return { status: res.status(), code: (await res.json()).error?.code as string | undefined };
  };
  expect(await whoami(token)).toEqual({ status: 200, code: undefined });
  // A scope the PAT does not have is refused at the exchange, with RFC 6749's error.
  const wider = await exchange(request, slug, pat, { scope: 'agent:read payments:write' });
  expect(wider.status()).toBe(400);
  expect(await wider.json()).toMatchObject({ error: 'invalid_scope', code: 'DELEGATED_SCOPE_TOO_WIDE' });

  // The keys page counts the token signed and the call verified with its kid (the
  // gateway's events are written each second).
  const kid = decodeProtectedHeader(token).kid!;
  await page.goto(`/t/${slug}/keys`);
  await expect(async () => {
    await page.reload();
    await expect(page.locator(`tr[data-kid="${kid}"]`).getByTestId('key-use')).toHaveText('1 / 1', { timeout: 1_000 });
  }).toPass({ timeout: 15_000 });

  // Runbook 000 without a body: revoke every key in the console.
  await waitForHydration(page);
  const all = page.getByRole('region', { name: 'Revoke all keys' });
  await all.getByRole('button', { name: 'Preview what it revokes' }).click();
  await expect(all.getByTestId('revoke-preview')).toContainText('1 key(s) would be unpublished');
  await expect(all.getByTestId('live-tokens')).toHaveText(/^1 delegated token\(s\) they signed may still be live/);
  await all.getByLabel('Reason').fill('e2e: signing key compromise');
  await all.getByLabel(`Type ${slug} to confirm`).fill(slug);
  await all.getByRole('button', { name: 'Revoke 1 key(s) and activate a fresh one' }).click();
  await expect(page.getByTestId('key-done')).toContainText('Revoked:');

  // Refused by the gateway at once (the notification reloads the key set), and by jose
  // against the new JWKS; a fresh exchange is accepted by both.
  await expect.poll(() => whoami(token), { timeout: 2_000 }).toEqual({ status: 401, code: 'DELEGATED_KEY_REVOKED' });
  await expect(verifyIndependently(request, baseURL!, slug, token)).rejects.toThrow();
  const fresh = (await (await exchange(request, slug, pat)).json()).access_token as string;
  await verifyIndependently(request, baseURL!, slug, fresh);
  expect(await whoami(fresh)).toEqual({ status: 200, code: undefined });
  expect(problems.filter((p) => !p.includes('status of 422'))).toEqual([]);
});
