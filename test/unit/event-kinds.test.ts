import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EVENT_DETAIL_KEY_PATTERN, EVENT_KIND_PATTERN } from '../../agent/identity/event-format.js';
import { ADAPTIVE_EVENT_KINDS, GUARD_EVENT_KINDS } from '../../agent/identity/event-kinds.js';

const root = resolve(import.meta.dirname, '../..');

describe('event kinds (docs/wire-format.md §12.5)', () => {
  it('§12.5 names every kind the guard records, and the guard records no kind it does not list', () => {
    const spec = readFileSync(join(root, 'docs/wire-format.md'), 'utf8');
    const table = spec.slice(spec.indexOf('### 12.5 Events'), spec.indexOf('### 12.6'));
    for (const kind of Object.keys(GUARD_EVENT_KINDS)) expect(table, kind).toContain(`\`${kind}\``);
    const dir = join(root, 'agent/guard');
    const recorded = readdirSync(dir).flatMap((f) => [...readFileSync(join(dir, f), 'utf8').matchAll(/kind: '([a-z_.]+)'/g)].map((m) => m[1]!));
    expect(recorded.length).toBeGreaterThan(5);
    expect([...new Set(recorded)].filter((k) => !(k in GUARD_EVENT_KINDS))).toEqual([]);
    for (const [kind, { d }] of Object.entries(GUARD_EVENT_KINDS)) {
      expect(kind).toMatch(EVENT_KIND_PATTERN);
      for (const key of d) expect(key).toMatch(EVENT_DETAIL_KEY_PATTERN);
    }
  });

  it('§12.5 names every kind adaptive reporting records, with its detail keys, and it records no kind it does not list', () => {
    const spec = readFileSync(join(root, 'docs/wire-format.md'), 'utf8');
    const table = spec.slice(spec.indexOf('### 12.5 Events'), spec.indexOf('### 12.6'));
    for (const [kind, { d }] of Object.entries(ADAPTIVE_EVENT_KINDS)) {
      const row = table.split('\n').find((l) => l.startsWith(`| \`${kind}\``));
      expect(row, kind).toBeDefined();
      for (const key of d) expect(row, `${kind} ${key}`).toContain(`\`${key}\``);
      expect(kind).toMatch(EVENT_KIND_PATTERN);
    }
    const files = [...readdirSync(join(root, 'agent/adaptive')).map((f) => join('agent/adaptive', f)), 'agent/store/held-readings.ts'].filter((f) => f.endsWith('.ts'));
    const recorded = files.flatMap((f) => [...readFileSync(join(root, f), 'utf8').matchAll(/kind: '([a-z_.]+)'/g)].map((m) => m[1]!));
    expect(new Set(recorded)).toEqual(new Set(Object.keys(ADAPTIVE_EVENT_KINDS)));
  });
});
