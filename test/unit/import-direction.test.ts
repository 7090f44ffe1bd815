import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { classify, importViolations, type Place } from '../helpers/import-rules.js';

/**
 * docs/architecture.md, "Import rules": data flows one way, sources → ingest → commit → score →
 * batch → uplink. A stage imports leaves, the store and itself: never a later stage (nor an
 * earlier one), never the health side (which observes it), never the run assembly.
 * This reads every import of agent/ and fails naming the file, the import and the rule.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const agentDir = join(root, 'agent');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
  });
}

/** Relative imports of one file (static, re-exports, dynamic `import('...')`), resolved to agent-relative paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)'(\.{1,2}\/[^']+)'/gm)) {
    out.push(relative(agentDir, resolve(dirname(file), m[1]!)).replace(/\.js$/, '.ts'));
  }
  return out;
}

const files = sourceFiles(agentDir).map((f) => ({ abs: f, rel: relative(agentDir, f) }));

describe('import direction (docs/architecture.md)', () => {
  it('every file of agent/ has a place: a leaf, a stage, the health side, the run assembly or the receiver', () => {
    const unplaced = files.filter((f) => classify(f.rel) === undefined).map((f) => f.rel);
    expect(unplaced).toEqual([]);
  });

  it('no import goes from a stage to a later stage, into the health side, or back into the run assembly', () => {
    const found = files.flatMap((f) => importViolations(f.rel, importsOf(f.abs)));
    expect(found).toEqual([]);
  });

  it('the rule itself catches the imports the refactor removed (a source importing the writer class, inference reaching into a source, a stage calling health)', () => {
    const cases: [string, string][] = [
      ['sources/mqtt/mqtt-source.ts', 'pipeline/group-commit.ts'],
      ['sources/coap-observe/coap-observe-source.ts', 'pipeline/forwarder.ts'],
      ['inference/router.ts', 'sources/mqtt/topic.ts'],
      ['pipeline/inference-stage.ts', 'health/metrics.ts'],
      ['store/batch-store.ts', 'pipeline/batcher.ts'],
      ['util/tls.ts', 'config/schema.ts'],
      ['uplink/http/http-uplink.ts', 'run/agent.ts'],
    ];
    for (const [from, to] of cases) expect(importViolations(from, [to]), `${from} -> ${to}`).toHaveLength(1);
    // Allowed: a stage reads what an earlier one stored; the run and the health side see all stages.
    expect(importViolations('pipeline/forwarder.ts', ['store/batch-store.ts'])).toEqual([]);
    expect(importViolations('run/agent.ts', ['sources/registry.ts', 'pipeline/forwarder.ts'])).toEqual([]);
    expect(importViolations('health/observability.ts', ['pipeline/forwarder.ts'])).toEqual([]);
    expect(classify('pipeline/forwarder.ts')).toEqual<Place>({ kind: 'stage', stage: 'uplink' });
  });

  it('SQL runs only in agent/store/ (and in the receiver, which has its own store)', () => {
    const sql = files.filter((f) => !/^(store|receiver)\//.test(f.rel) && /\.(prepare|pragma|transaction)\(|\bdb\.exec\(/.test(readFileSync(f.abs, 'utf8')));
    expect(sql.map((f) => f.rel)).toEqual([]);
  });
});
