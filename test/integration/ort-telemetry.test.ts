import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { waitFor } from '../helpers/ports.js';
import { tempDir } from '../helpers/setup.js';

/** Every file under `dir`, relative to it. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

// onnxruntime 1.29+ writes a device id and a telemetry event store under
// $HOME/.cache/Microsoft/DeveloperTools/.onnxruntime as soon as a session is created (measured:
// 36 + 32,768 bytes for one session; 2.7 MB over a day of test runs here), and uploads the events to
// Microsoft when it can. On a gateway $HOME is the state directory on the SD card
// (agent/inference/ort-privacy.ts).
describe('onnxruntime telemetry', () => {
  it('an agent running its models leaves nothing of onnxruntime in its home directory', { timeout: 120_000 }, async () => {
    const home = tempDir('home');
    const dir = tempDir('agent');
    expect(cli(['init', '--data-dir', dir, '--simulator', '1', '--anomaly-sensors', '#', '--no-http']).code).toBe(0);
    // ORT_DISABLE_TELEMETRY unset: the agent must turn telemetry off itself, whoever starts it.
    const agent = cliBackground(['run', '--data-dir', dir], { env: { HOME: home, ORT_DISABLE_TELEMETRY: undefined } });
    try {
      // The model's session is created, and probed with one run, before this line.
      await agent.waitForOutput(/"bindings":\[\{"id":"anomaly","model":"stream-ad".*inference running/, 60_000);
      await waitFor('readings through the model', () => (JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout) as { inference: { scored: number } | null }).inference?.scored, 30_000, 250);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
    expect(filesUnder(home)).toEqual([]);
  });
});
