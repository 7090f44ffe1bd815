/**
 * A fuzz run of the guard's config paths (issue 14): seeded random `guard:` sections, from valid
 * to absurd, through the agent's own config parser. Every one is either accepted, and then a
 * guard built from it judges random readings without throwing, or refused with an AgentError that
 * names the key under `guard.` and its line. The figures are printed.
 */
import pino from 'pino';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseConfig } from '../../agent/config/load.js';
import { guardSchema } from '../../agent/guard/config.js';
import { AgentError } from '../../agent/errors.js';
import { buildGuard } from '../../agent/guard/build.js';
import { seededRandom } from '../helpers/seeded.js';
import { freshStore } from '../helpers/store.js';

const CASES = 3000;
const BASE = { version: 1, device: {}, store: {}, batch: {}, sources: {}, clock: {}, log: {} };

const KEYS: Record<string, string[]> = {
  '': ['ranges', 'unit_ranges', 'stuck', 'jump', 'max_future_s', 'silence_factor', 'quarantine', 'defaults', 'sources', 'assets', 'rangez'],
  stuck: ['readings', 'min_s', 'window'],
  jump: ['window', 'factor', 'min_delta', 'median'],
  quarantine: ['keep_per_s', 'keep_max', 'quiet_s', 'release'],
  policy: ['sensor_per_s', 'sensor_burst', 'origin_per_s', 'origin_burst', 'new_ids_per_10s', 'quarantine', 'rate'],
};

describe('guard config fuzz', () => {
  it(`${CASES} random guard sections: accepted and working, or refused naming the key and line`, async () => {
    const rnd = seededRandom('guard-config-fuzz');
    // Half the cases are wild (typos, wrong types, absurd values); the others keep to valid keys and plausible values.
    let wild = true;
    const pick = <T>(xs: readonly T[]): T => xs[rnd.int(0, xs.length - 1)]!;
    const valid: Record<string, string[]> = Object.fromEntries(Object.entries(KEYS).map(([k, v]) => [k, v.slice(0, -1)]));
    const scalar = (): unknown =>
      pick<() => unknown>([
        () => rnd.int(-5, 100_000),
        () => rnd.next() * 10,
        () => -rnd.next(),
        () => 1e308,
        () => Number.NaN,
        () => 'x'.repeat(rnd.int(0, 3000)),
        () => pick([true, false, null]),
        () => [1, 2],
        () => ({}),
        () => 0,
        () => 2 ** 53 + 2,
      ])();
    const range = () => (!wild || rnd.next() < 0.7 ? { min: rnd.int(-100, 50), max: rnd.int(-50, 200) } : { min: scalar(), max: scalar(), ...(rnd.next() < 0.2 ? { avg: 1 } : {}) });
    const filter = () => (wild ? pick(['pump1/temp', 'a/+/b', 'x/#', '#', '+', 'bad/#/x', 'a+b/c', '', 'é/ü', 'z'.repeat(rnd.int(1, 400))]) : pick(['pump1/temp', 'a/+/b', 'x/#', '#']));
    const record = (value: () => unknown, keyOf: () => string, max = 5) => Object.fromEntries(Array.from({ length: rnd.int(0, max) }, () => [keyOf(), value()]));
    const plausible = (key: string) => (key === 'quarantine' ? pick([true, false]) : key === 'factor' ? 1 + rnd.int(0, 50) : key === 'window' ? rnd.int(3, 50) : rnd.int(2, 5000));
    const section = (kind: string) => {
      const keys = wild ? KEYS[kind]! : valid[kind]!;
      return Object.fromEntries(Array.from({ length: rnd.int(0, keys.length) }, () => pick(keys)).map((k) => [k, !wild ? plausible(k) : rnd.next() < 0.8 ? plausible(k) * (rnd.next() < 0.1 ? -1 : 1) : scalar()]));
    };
    const guardSection = () => {
      const g: Record<string, unknown> = {};
      for (const key of wild ? KEYS['']! : valid['']!) {
        if (rnd.next() < 0.6) continue;
        g[key] =
          key === 'ranges' ? record(range, filter)
          : key === 'unit_ranges' ? record(range, () => pick(['Cel', '%RH', 'Pa', 'x'.repeat(rnd.int(1, 40)), '']))
          : key === 'stuck' || key === 'jump' || key === 'quarantine' ? (!wild || rnd.next() < 0.9 ? section(key) : scalar())
          : key === 'defaults' ? section('policy')
          : key === 'sources' ? record(() => section('policy'), () => (wild ? pick(['mqtt', 'coap', 'Bad-Id', '9x', 'a'.repeat(40)]) : pick(['mqtt', 'coap'])))
          : key === 'assets' ? record(() => (!wild || rnd.next() < 0.8 ? Array.from({ length: rnd.int(1, 3) }, filter) : scalar()), () => (wild ? pick(['boiler1', '', 'pump']) : pick(['boiler1', 'pump'])))
          : wild ? scalar() : rnd.int(1, 1000);
      }
      return g;
    };
    let accepted = 0;
    let refused = 0;
    let judged = 0;
    const reasons = new Map<string, number>();
    const started = performance.now();
    const { db, writer } = freshStore('guard-fuzz');
    for (let i = 0; i < CASES; i++) {
      wild = i % 2 === 0;
      const text = stringify({ ...BASE, guard: guardSection() });
      let cfg;
      try {
        cfg = parseConfig(text, 'edge-agent.yaml');
      } catch (err) {
        expect(err, `${rnd.describe()} case ${i}:\n${text.slice(0, 2000)}`).toBeInstanceOf(AgentError);
        const first = (err as Error).message.split('\n')[1] ?? '';
        expect(first, `${rnd.describe()} case ${i}: ${(err as Error).message.slice(0, 500)}`).toMatch(/^ {2}edge-agent\.yaml(:\d+)?: guard(\.|:)/);
        const key = /guard[.\w]*/.exec(first)![0].replace(/\.(\d+|[a-z0-9_/+#-]{12,})/g, '.*');
        reasons.set(key, (reasons.get(key) ?? 0) + 1);
        refused++;
        continue;
      }
      accepted++;
      if (accepted % 5 !== 0) continue;
      // An accepted config builds a guard that judges readings without throwing.
      const guard = buildGuard(cfg.guard, writer, { db, reports: { event: () => undefined }, count: () => undefined, assets: cfg.guard.assets, log: pino({ level: 'silent' }) });
      await guard.submit({ source: 'mqtt', origin: 'sensors/x', readings: Array.from({ length: 20 }, (_, k) => ({ sensor: `s${k % 3}`, ts: 1_763_000_000_000 + k, timeSource: 'sensor' as const, value: rnd.next() * 200 - 100, unit: pick(['Cel', '%RH', undefined]) })) });
      guard.tick();
      judged++;
    }
    const ms = performance.now() - started;
    console.log(
      `guard config fuzz (${rnd.describe()}): ${CASES} cases in ${Math.round(ms)} ms (${(ms / CASES).toFixed(2)} ms each): ${accepted} accepted (${judged} built and fed 20 readings), ${refused} refused; refusals by first key: ${JSON.stringify(Object.fromEntries([...reasons].sort((a, b) => b[1] - a[1]).slice(0, 12)))}`,
    );
    expect(accepted).toBeGreaterThan(CASES / 20);
    expect(refused).toBeGreaterThan(CASES / 20);
  }, 120_000);

  it('the sample guard section of the README is a valid config', () => {
    const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Guarding the edge'));
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
    const cfg = guardSchema.parse((parse(yaml) as { guard: unknown }).guard);
    expect(cfg.sources['zigbee']).toEqual({ new_ids_per_10s: 1000 });
    expect(cfg.ranges['tank1/level']).toEqual({ min: 0, max: 4.5 });
  });
});
