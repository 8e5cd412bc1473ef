import { test, expect, type Page, type BrowserContext } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { newAdmin, signIn, waitForHydration, watchConsole } from './helpers';

// Passkeys in the browser: an admin adds one through Chromium's virtual authenticator (the
// DevTools protocol's WebAuthn domain), signs in with it, and a dangerous action asks for
// a step-up that the passkey gives. The console runs at http://localhost here: browsers
// offer passkeys only to a site reached by a domain name (scripts/e2e.sh sets PUBLIC_URL).

async function virtualAuthenticator(context: BrowserContext, page: Page): Promise<void> {
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
}

/** Moves every session of `email` to a step-up eleven minutes old, past the ten that count. */
function ageStepUp(email: string): void {
  execFileSync(process.env.PSQL ?? 'psql', [
    process.env.DATABASE_URL!,
    '-v',
    'ON_ERROR_STOP=1',
    '-qc',
    `UPDATE staff_sessions SET stepped_up_at = now() - interval '11 minutes'
     WHERE staff_id = (SELECT id FROM staff WHERE email = '${email}')`,
  ], { env: { ...process.env, PGOPTIONS: '-c staff_console.unaudited=e2e-fixture' } });
}

test('a passkey is added, signs in, and gives the step-up a dangerous action asks for', async ({ page, browser }) => {
  test.setTimeout(90_000);
  const problems = watchConsole(page);
  await signIn(page);
  const password = 'amber meadow kettles hum';
  let adminProblems: string[] = [];
  const { context, admin, email, target } = await newAdmin(page, browser, 'passkey', password, async (c, p) => {
    adminProblems = watchConsole(p);
    await virtualAuthenticator(c, p);
  });

  // A name is required, and short: said at the field, before the browser asks anything.
  await admin.getByRole('link', { name: 'Security' }).click();
  await expect(admin).toHaveURL(/\/account\/security$/);
  await waitForHydration(admin);
  const name = admin.getByLabel('Name of the new passkey');
  await admin.getByRole('button', { name: 'Add a passkey' }).click();
  await expect(admin.locator('#passkey-name-error')).toContainText('Name the passkey');
  await name.fill('k'.repeat(101));
  await admin.getByRole('button', { name: 'Add a passkey' }).click();
  await expect(admin.locator('#passkey-name-error')).toHaveText('Use at most 100 characters for the name.');
  await name.fill('Work laptop');
  await admin.getByRole('button', { name: 'Add a passkey' }).click();
  // The first second factor: its recovery codes, shown once.
  await expect(admin.getByTestId('recovery-codes').getByRole('listitem')).toHaveCount(10);
  await admin.getByTestId('enrol-continue').click();
  await expect(admin.getByTestId('signed-in-as')).toBeVisible();
  await admin.goto('/account/security');
  await expect(admin.getByTestId('passkeys')).toContainText('Work laptop');

  // Signing in: the password, then the passkey.
  await admin.getByRole('button', { name: 'Sign out' }).click();
  await expect(admin).toHaveURL(/\/sign-in$/);
  await admin.goto('/sign-in');
  await waitForHydration(admin);
  await admin.getByLabel('Email').fill(email);
  await admin.getByLabel('Password').fill(password);
  const started = Date.now();
  await admin.getByRole('button', { name: 'Sign in' }).click();
  await expect(admin).toHaveURL(/\/sign-in\/verify/);
  await admin.getByRole('button', { name: 'Use your passkey' }).click();
  await expect(admin.getByTestId('signed-in-as')).toBeVisible();
  console.log(`figure: sign-in with password and passkey, end to end: ${Date.now() - started} ms`);
  await admin.goto('/account/security');
  await expect(admin.getByTestId('passkeys')).toContainText('last used');

  // Eleven minutes on (the session's step-up aged), disabling someone asks for a step-up;
  // the passkey gives it, and the same action goes ahead.
  ageStepUp(email);
  await admin.goto('/staff');
  await waitForHydration(admin);
  const targetRow = admin.getByTestId('staff-table').getByRole('row').filter({ hasText: target });
  await targetRow.getByRole('button', { name: 'Disable' }).click();
  const prompt = admin.getByTestId('step-up');
  await expect(prompt).toBeVisible();
  await expect(targetRow).toContainText('Active');
  const stepStarted = Date.now();
  await prompt.getByRole('button', { name: 'Use your passkey' }).click();
  await expect(targetRow).toContainText('Disabled');
  console.log(`figure: step-up round trip with a passkey (click to the disabled row): ${Date.now() - stepStarted} ms`);
  await expect(prompt).toHaveCount(0);

  expect(problems.filter((p) => !p.includes('422'))).toEqual([]);
  expect(adminProblems.filter((p) => !p.includes('403') && !p.includes('422'))).toEqual([]);
  await context.close();
});
