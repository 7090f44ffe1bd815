import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { INTERVAL_MAX_MS, INTERVAL_MIN_MS } from '../../agent/adaptive/config.js';
import { MAX_ACK_BYTES, parseAck } from '../../agent/adaptive/mqtt-commands.js';
import { targetFor } from '../../agent/adaptive/policy.js';
import { parseConfig } from '../../agent/config/load.js';
import { AgentError } from '../../agent/errors.js';
import { seededRandom, type Seeded } from '../helpers/seeded.js';

const BASE = `version: 1
device: {}
store: {}
batch: {}
sources:
  mqtt:
    type: mqtt
    url: mqtt://127.0.0.1:1883
    topics: ['sensors/#']
    client_id: gw1
clock: {}
log: {}
`;

const VALID = {
  policy: [{ sensors: ['pump1/#'], healthy_interval_ms: 10_000, alert_interval_ms: 1000, alert_on: ['pump1'], models: ['stream-ad'] }],
  commands: { topic_prefix: 'edge-agent/devices', ack_timeout_ms: 5000, retain: true, sensors: ['#'] },
  summary: { sensors: ['yard/#'], interval_ms: 60_000, before_alert_ms: 300_000, after_alert_ms: 300_000 },
  retry_s: 30,
};

/** Odd values a hand-edited YAML file holds: wrong types, bounds ±1, huge, negative, wildcards in the wrong place, unknown keys. */
function oddValue(r: Seeded): unknown {
  const pool: unknown[] = [
    -1, 0, 9, 10, 11, 999, 1000, 86_400_000, 86_400_001, 2 ** 53, 1.5, Number.NaN, '1000', '', 'x'.repeat(300), true, null, [], {}, ['#'], ['a/#/b'], ['+x'], ['ok/+'],
    Array.from({ length: 70 }, () => 'a'), 'edge/+/x', '/lead', 'trail/', { extra: 1 }, 'stream-ad', 'Bad Model',
  ];
  return pool[r.int(0, pool.length - 1)];
}

/** Replaces one value anywhere in the tree, or adds an unknown key, or deletes a key. */
function mutate(node: unknown, r: Seeded): unknown {
  if (Array.isArray(node)) {
    if (node.length === 0 || r.int(0, 4) === 0) return oddValue(r);
    const i = r.int(0, node.length - 1);
    return node.map((x, k) => (k === i ? mutate(x, r) : x));
  }
  if (node && typeof node === 'object') {
    const keys = Object.keys(node);
    const op = r.int(0, 9);
    if (op === 0) return { ...node, [['extra', 'healthy_intervall_ms', 'url', 'mqtt_source'][r.int(0, 3)]!]: oddValue(r) };
    if (op === 1 && keys.length > 0) {
      const copy = { ...(node as Record<string, unknown>) };
      delete copy[keys[r.int(0, keys.length - 1)]!];
      return copy;
    }
    const k = keys[r.int(0, keys.length - 1)]!;
    return { ...node, [k]: r.int(0, 2) === 0 ? oddValue(r) : mutate((node as Record<string, unknown>)[k], r) };
  }
  return oddValue(r);
}

describe('adaptive config and MQTT answers fuzz (agent/adaptive/README.md)', () => {
  it('2,000 mutated adaptive: sections load with every interval within bounds, or fail naming an adaptive key and its line; never another error', () => {
    const r = seededRandom('adaptive config fuzz');
    let loaded = 0;
    let refused = 0;
    const reasons = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      let cfg: unknown = VALID;
      for (let m = r.int(1, 3); m > 0; m--) cfg = mutate(cfg, r);
      const text = `${BASE}${stringify({ adaptive: cfg })}`;
      try {
        const c = parseConfig(text, 'edge-agent.yaml');
        loaded++;
        for (const rule of c.adaptive?.policy ?? []) {
          expect(rule.healthy_interval_ms >= INTERVAL_MIN_MS && rule.healthy_interval_ms <= INTERVAL_MAX_MS && rule.alert_interval_ms >= INTERVAL_MIN_MS && rule.alert_interval_ms <= rule.healthy_interval_ms, `${r.describe()}\n${text}`).toBe(true);
          // The policy evaluates whatever loaded.
          expect(targetFor([rule], 'pump1/x', new Map([['pump1/x', new Set(['stream-ad'])]]))?.intervalMs ?? rule.alert_interval_ms).toBeGreaterThanOrEqual(INTERVAL_MIN_MS);
        }
      } catch (err) {
        expect(err, `${r.describe()}\n${text}`).toBeInstanceOf(AgentError);
        const message = (err as Error).message;
        expect(message, `${r.describe()}\n${text}`).toMatch(/edge-agent\.yaml:\d+: adaptive(\.[\w.]+)?: /);
        refused++;
        const reason = /edge-agent\.yaml:\d+: (adaptive[\w.]*): /.exec(message)![1]!.replace(/\.\d+/g, '[]');
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
      }
    }
    const top = [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, n]) => `${k} ${n}`).join(', ');
    console.log(`adaptive config fuzz (${r.describe()}): 2000 configs, ${loaded} loaded, ${refused} refused with key and line; most refused: ${top}`);
    expect(loaded).toBeGreaterThan(50);
    expect(refused).toBeGreaterThan(500);
  });

  it('20,000 random and mutated set_interval answers: each taken as a valid answer or refused with a reason; never a throw', () => {
    const r = seededRandom('set_interval answer fuzz');
    const good = { request: 'abc-1', status: 'applied', interval_ms: 1000, min_ms: 500, max_ms: 60_000 };
    let taken = 0;
    const refused = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      const kind = r.int(0, 3);
      const payload =
        kind === 0
          ? Buffer.from(Array.from({ length: r.int(0, 700) }, () => r.int(0, 255)))
          : kind === 1
            ? Buffer.from(JSON.stringify(mutate(good, r)))
            : kind === 2
              ? Buffer.from(JSON.stringify(good).slice(0, r.int(0, 80)))
              : Buffer.from(JSON.stringify({ ...good, request: 'r'.repeat(r.int(1, 600)) }));
      const out = parseAck(payload);
      if (typeof out === 'string') {
        const reason = out.replace(/: .*/, '');
        refused.set(reason, (refused.get(reason) ?? 0) + 1);
        continue;
      }
      taken++;
      expect(payload.length).toBeLessThanOrEqual(MAX_ACK_BYTES);
      expect(['applied', 'out_of_range', 'unknown_sensor', 'fixed']).toContain(out.status);
      expect(Number.isInteger(out.interval_ms) && out.interval_ms >= 0 && out.interval_ms <= INTERVAL_MAX_MS).toBe(true);
      if (out.min_ms !== undefined && out.max_ms !== undefined) expect(out.min_ms).toBeLessThanOrEqual(out.max_ms);
    }
    const top = [...refused].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, n]) => `${k} ${n}`).join(', ');
    console.log(`set_interval answer fuzz (${r.describe()}): 20000 answers, ${taken} taken, ${20_000 - taken} refused; most refused: ${top}`);
    expect(taken).toBeGreaterThan(500);
    expect(refused.get(`longer than ${MAX_ACK_BYTES} bytes`) ?? 0).toBeGreaterThan(100);
  });
});
