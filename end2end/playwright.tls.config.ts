import { defineConfig } from '@playwright/test';
import base from './playwright.config';

// The release build behind Caddy over HTTPS (scripts/tls-test.sh starts both and sets
// TLS_BASE_URL). Caddy's certificate comes from its own internal CA, which the browser
// trusts through the certificate database in TLS_BROWSER_HOME, and the Node-side requests
// through CADDY_ROOT_CA: nothing here ignores a certificate error.
export default defineConfig({
  ...base,
  testDir: './tls',
  // Its own output folder: it runs beside the browser suite (scripts/test.sh), which
  // empties `test-results` when it starts.
  outputDir: './test-results-tls',
  globalSetup: undefined,
  timeout: 60_000,
  use: {
    ...base.use,
    baseURL: process.env.TLS_BASE_URL,
    launchOptions: {
      ...base.use?.launchOptions,
      env: { ...process.env, HOME: process.env.TLS_BROWSER_HOME ?? process.env.HOME ?? '' },
    },
  },
});
