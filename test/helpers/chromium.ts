import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { tempDir } from './setup.js';

export const CHROMIUM = '/usr/bin/chromium';
/** Screenshots and other artefacts of browser tests (gitignored). */
export const TEST_RESULTS = resolve(import.meta.dirname, '../../test-results');

/** Debian's chromium, headless, with a fresh profile and nothing talking to the network on its own. */
export async function launchChromium(): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install chromium (.ci/run does it)`);
  mkdirSync(TEST_RESULTS, { recursive: true });
  return chromium.launchPersistentContext(tempDir('chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
