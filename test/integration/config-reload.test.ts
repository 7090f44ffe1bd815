/**
 * Config reload without a restart (issue 16 item 2), through the public interfaces: SIGHUP to a
 * running agent, `status`, /healthz, and the verdicts that reach a real receiver over a real
 * mosquitto. A changed threshold and a new binding apply live; a key that needs a restart is
 * named; a broken file is refused with its file:line: key error and the running config kept.
 */
import Database from 'better-sqlite3';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import type { Broker } from '../helpers/mosquitto.js';
import { useBrokerAndReceiver } from '../helpers/peers.js';
import { freePort, waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, tempDir, type RunningReceiver } from '../helpers/setup.js';

interface Status {
  config: { version: string; restart_needed: string[]; last_reload: { ok: boolean; applied: string[]; error?: string } | null };
  inference: { bindings: Record<string, { model: string; alert?: { on: number; off: number } }> };
}

/** The shipped stream-ad's own alert rule (models/manifest.json): what the binding judges by before any override. */
const manifestAlert = (JSON.parse(readFileSync(join(import.meta.dirname, '../../models/manifest.json'), 'utf8')) as { models: { id: string; alert: { on: number; off: number } }[] }).models.find((m) => m.id === 'stream-ad')!.alert;

const status = (dir: string) => JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout) as Status;

describe('config reload (SIGHUP), live over MQTT to a receiver', () => {
  let broker: Broker;
  let receiver: RunningReceiver;
  const A = tempDir('reload');

  useBrokerAndReceiver('reload-receiver', (p) => ({ broker, receiver } = p));

  /** Thresholds of the verdicts the receiver stored for `key`, in order. */
  const thresholds = (key: string) => {
    const db = new Database(join(receiver.dataDir, 'receiver.db'), { readonly: true });
    try {
      return (db.prepare('SELECT threshold FROM verdicts WHERE key = ? ORDER BY id').all(key) as { threshold: number }[]).map((r) => r.threshold);
    } finally {
      db.close();
    }
  };
  const readings = (sensor: string, n: number, from = 0) => Array.from({ length: n }, (_, i) => ({ topic: `sensors/${sensor}`, payload: String(20 + ((from + i) % 7) * 0.1) }));

  it('applies a changed threshold and a new binding live, names what needs a restart, refuses a broken file', { timeout: 240_000 }, async () => {
    const port = await freePort();
    const init = cli([
      'init', '--data-dir', A, '--mqtt-url', broker.url, '--mqtt-topic', 'sensors/#',
      '--uplink-url', `${receiver.baseUrl}/v1/batches`, '--receiver-key', receiver.publicKey,
      '--anomaly-sensors', 'pump1/#', '--http-listen', `127.0.0.1:${port}`,
    ]);
    expect(init.code, init.stderr).toBe(0);
    // Every verdict goes upstream (not only the informative ones), so each one's threshold can be read at the receiver.
    patchConfig(A, [[['batch', 'max_age_ms'], 200], [['inference', 'verdicts'], 'all']]);
    const agent = cliBackground(['run', '--data-dir', A]);
    try {
      await agent.waitForReady();
      const pub = await connectPublisher(broker.url);
      // stream-ad warms up on 150 rows, then judges each reading.
      await publishAll(pub, readings('pump1/temp', 200));
      await waitFor('verdicts at the receiver', () => thresholds('pump1/temp').length >= 20 || undefined, 60_000);
      expect(new Set(thresholds('pump1/temp'))).toEqual(new Set([manifestAlert.on])); // the manifest's alert.on
      expect(status(A).inference.bindings['anomaly']!.alert).toMatchObject({ on: manifestAlert.on, off: manifestAlert.off });

      // A new threshold for the binding, a second binding, a guard range, and the MQTT source's keepalive (a connection setting: needs a restart).
      patchConfig(A, [
        [['inference', 'bindings', 'anomaly', 'alert'], { on: 0.9 }],
        [['inference', 'bindings', 'pump2'], { model: 'stream-ad', sensors: ['pump2/#'] }],
        [['sources', 'mqtt', 'keepalive_s'], 45],
        [['guard', 'ranges'], { 'pump1/#': { min: 0, max: 100 } }],
      ]);
      agent.proc.kill('SIGHUP');
      await agent.waitForOutput(/config reloaded; restart needed for: sources\.mqtt/, 60_000);
      const s = status(A);
      expect(s.config.restart_needed).toEqual(['sources.mqtt']);
      expect(s.config.last_reload).toMatchObject({ ok: true, applied: ['guard.ranges', 'inference.bindings.anomaly', 'inference.bindings.pump2'] });
      expect(s.inference.bindings['anomaly']!.alert).toMatchObject({ on: 0.9, off: manifestAlert.off });
      expect(s.inference.bindings['pump2']).toMatchObject({ model: 'stream-ad' });
      const text = cli(['status', '--data-dir', A]).stdout;
      expect(text).toMatch(/^config +version [0-9a-f]{16}; restart needed for: sources\.mqtt$/m);
      expect(text).toMatch(new RegExp(`^ {2}anomaly {2}model stream-ad, 1 series, alert >= 0\\.9 \\(clears past ${manifestAlert.off}\\)$`, 'm'));
      expect(text).toMatch(/^ {2}! config +restart needed for: sources\.mqtt/m);
      expect(text).not.toMatch(/[{}]"/); // no raw JSON for people
      const hz = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(hz.status).toBe(200);
      expect(((await hz.json()) as { checks: Record<string, { reason: string }> }).checks['config']!.reason).toMatch(/^restart needed for: sources\.mqtt/);

      // The next verdicts are judged by the new threshold; the series kept its state (no new warm-up).
      const before = thresholds('pump1/temp').length;
      await publishAll(pub, [...readings('pump1/temp', 30, 200), ...readings('pump2/temp', 160)]);
      const after = await waitFor('verdicts under the new threshold', () => {
        const t = thresholds('pump1/temp');
        return t.length >= before + 30 ? t : undefined;
      }, 60_000);
      expect(new Set(after.slice(before))).toEqual(new Set([0.9]));
      await waitFor('the new binding judges pump2', () => thresholds('pump2/temp').length > 0 || undefined, 60_000);

      // A broken file: refused with file:line: key, the running config kept.
      const yaml = join(A, 'edge-agent.yaml');
      const good = readFileSync(yaml, 'utf8');
      writeFileSync(yaml, good.replace(/^batch:\n/m, 'batch:\n  max_redings: 5\n'));
      const line = readFileSync(yaml, 'utf8').split('\n').findIndex((l) => l.includes('max_redings')) + 1;
      agent.proc.kill('SIGHUP');
      const refused = await agent.waitForOutput(/config reload refused[^\n]*/, 60_000);
      expect(refused[0]).toContain(`${yaml}:${line}: batch.max_redings: unknown key`);
      await waitFor('status shows the refusal', () => status(A).config.last_reload?.ok === false || undefined, 30_000);
      const kept = status(A);
      expect(kept.config.last_reload!.error).toMatch(/batch\.max_redings: unknown key/);
      expect(kept.inference.bindings['anomaly']!.alert).toMatchObject({ on: 0.9 });
      expect(cli(['status', '--data-dir', A]).stdout).toMatch(/^ {2}reload +(just now|\d+ s ago): REFUSED, running config kept: .*batch\.max_redings: unknown key/m);

      // A binding naming a model the manifest lacks is refused too (checked before anything changes).
      writeFileSync(yaml, good.replace(/model: stream-ad\n(\s+)sensors:\n(\s+)- pump2/, 'model: no-such-model\n$1sensors:\n$2- pump2'));
      agent.proc.kill('SIGHUP');
      await agent.waitForOutput(/config reload refused[^\n]*inference\.bindings\.pump2\.model/, 60_000);
      expect(status(A).inference.bindings['pump2']).toMatchObject({ model: 'stream-ad' });
      await pub.endAsync();
    } finally {
      await agent.stop();
    }
  });
});
