import { execFileSync } from 'node:child_process';
import { ADMIN_EMAIL, ADMIN_PASSWORD } from './tests/helpers';

// cargo-leptos starts the server and runs Playwright at once: wait until the console is
// ready (migrated, demo tenant created), then add the fixture tenants the tests switch between.
export default async function globalSetup(): Promise<void> {
  const base = process.env.E2E_BASE_URL ?? 'http://127.0.0.1:3000';
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      const res = await fetch(`${base}/readyz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the console at ${base} did not become ready`);
    await new Promise((r) => setTimeout(r, 250));
  }

  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL must point at the database the console under test uses');
  // Fixtures written directly, with no audit event: said so, or the database refuses them
  // (migration audit_obligation).
  const fixtureEnv = { ...process.env, PGOPTIONS: '-c staff_console.unaudited=e2e-fixture' };
  execFileSync(process.env.PSQL ?? 'psql', [
    url,
    '-v',
    'ON_ERROR_STOP=1',
    '-qc',
    `INSERT INTO tenants (slug, name) VALUES
       ('globex', 'Globex Agents'),
       ('initech', 'Initech Integrations')
     ON CONFLICT (slug) DO NOTHING`,
  ], { env: fixtureEnv });

  // A known admin, made the way an operator would: with the command line.
  const binary = process.env.STAFF_CONSOLE_BIN ?? '../target/debug/staff-console';
  execFileSync(binary, ['staff', 'create', '--email', ADMIN_EMAIL, '--role', 'admin', '--name', 'E2E Admin'], {
    env: { ...process.env, STAFF_CONSOLE_PASSWORD: ADMIN_PASSWORD },
    stdio: 'inherit',
  });
  // The fixture admin's password is the tests' own, as if its owner had already replaced
  // the handed-over one (auth.spec.ts walks through that replacement for a new account).
  execFileSync(process.env.PSQL ?? 'psql', [
    url,
    '-v',
    'ON_ERROR_STOP=1',
    '-qc',
    `UPDATE staff SET must_change_password = false WHERE email = '${ADMIN_EMAIL}'`,
  ], { env: fixtureEnv });
}
