import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../agent/config/load.js';
import { adaptiveSchema } from '../../agent/adaptive/config.js';
import { targetFor } from '../../agent/adaptive/policy.js';

const rules = adaptiveSchema.parse({
  policy: [
    // An asset's remaining-useful-life model alerts on the asset key: every sensor of the pump goes fast.
    { sensors: ['pump1/#'], healthy_interval_ms: 60_000, alert_interval_ms: 1000, alert_on: ['pump1'], models: ['cmapss-rul'] },
    { sensors: ['#'], healthy_interval_ms: 10_000, alert_interval_ms: 2000 },
  ],
}).policy!;

describe('adaptive reporting policy (agent/adaptive/README.md)', () => {
  it('the first matching rule decides; healthy without a related alert', () => {
    expect(targetFor(rules, 'pump1/vib', new Map())).toEqual({ intervalMs: 60_000, reason: 'healthy' });
    expect(targetFor(rules, 'yard/rain', new Map())).toEqual({ intervalMs: 10_000, reason: 'healthy' });
  });

  it('alert_on and models: only the named model on the named series makes the rule fast', () => {
    expect(targetFor(rules, 'pump1/vib', new Map([['pump1', new Set(['cmapss-rul'])]]))).toEqual({ intervalMs: 1000, reason: 'alert', alert: { series: 'pump1', model: 'cmapss-rul' } });
    expect(targetFor(rules, 'pump1/vib', new Map([['pump1', new Set(['stream-ad'])]]))!.reason).toBe('healthy'); // another model
    expect(targetFor(rules, 'pump1/vib', new Map([['pump1/vib', new Set(['cmapss-rul'])]]))!.reason).toBe('healthy'); // alert_on names the asset only
  });

  it('without alert_on, a sensor is fast while its own series is in alert, by any model', () => {
    expect(targetFor(rules, 'yard/rain', new Map([['yard/rain', new Set(['stream-ad'])]]))).toMatchObject({ intervalMs: 2000, reason: 'alert' });
    expect(targetFor(rules, 'yard/rain', new Map([['yard/wind', new Set(['stream-ad'])]]))!.reason).toBe('healthy');
  });

  it('refuses intervals outside 10 ms .. 1 day and an alert interval slower than the healthy one', () => {
    const bad = (rule: object) => adaptiveSchema.safeParse({ policy: [{ sensors: ['#'], ...rule }] });
    expect(bad({ healthy_interval_ms: 9, alert_interval_ms: 9 }).success).toBe(false);
    expect(bad({ healthy_interval_ms: 86_400_001, alert_interval_ms: 1000 }).success).toBe(false);
    const slower = bad({ healthy_interval_ms: 1000, alert_interval_ms: 5000 });
    expect(slower.success).toBe(false);
    expect(slower.error!.issues[0]!.message).toMatch(/alert_interval_ms must not be longer than healthy_interval_ms/);
  });

  it('the sample config of agent/adaptive/README.md loads as it is written', () => {
    const readme = readFileSync(join(import.meta.dirname, '../../agent/adaptive/README.md'), 'utf8');
    const sample = /```yaml\n([\s\S]*?)```/.exec(readme)![1]!;
    const base = "version: 1\ndevice: {}\nstore: {}\nbatch: {}\nsources:\n  mqtt:\n    type: mqtt\n    url: mqtt://127.0.0.1:1883\n    topics: ['sensors/#']\n    client_id: gw1\nclock: {}\nlog: {}\n";
    const c = parseConfig(base + sample, 'README.md');
    expect(c.adaptive).toMatchObject({ policy: [{ healthy_interval_ms: 10_000, alert_interval_ms: 1000 }], commands: { topic_prefix: 'edge-agent/devices', retain: true }, summary: { interval_ms: 60_000 }, retry_s: 30 });
  });
});
