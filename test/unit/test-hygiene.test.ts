import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * Tests wait on facts (style.md, "Tests that wait on facts"): this keeps new tests from sliding
 * back to the patterns issue 18 removed. Each rule names the fact to use instead.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const testFiles = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? testFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
const files = testFiles(join(root, 'test')).map((p) => ({ rel: relative(root, p), text: readFileSync(p, 'utf8') }));
const offenders = (re: RegExp, except: RegExp = /$^/) => files.filter((f) => re.test(f.text) && !except.test(f.rel)).map((f) => f.rel);

describe('tests wait on facts', () => {
  it('read readiness from the agent (waitForReady: run --ready-fd), not from log text', () => {
    expect(offenders(/waitForOutput\(\/subscribed with QoS 1\//)).toEqual([]);
  });

  it('draw random timings from the seeded generator (test/helpers/seeded.ts), whose seed is printed', () => {
    expect(offenders(/setTimeout\([^)]*Math\.random\(\)/)).toEqual([]);
  });

  it('cut links with a relay (test/helpers/tcp-proxy.ts), not by destroying a client’s private stream', () => {
    expect(offenders(/\.client\.stream\.destroy\(\)|_sendPacket\s*=/, /^test\/unit\/mqtt-puback-hook\.test\.ts$/)).toEqual([]);
  });
});
