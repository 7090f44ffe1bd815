import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configSchema } from '../../agent/config/schema.js';
import { SOURCE_PLUGINS } from '../../agent/sources/registry.js';
import { UPLINK_PLUGINS } from '../../agent/uplink/registry.js';

/** Telegraf's rule (style.md): everything about a plugin in its folder, with a README whose sample config is valid. */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const plugins = [...SOURCE_PLUGINS.map((p) => ({ kind: 'sources', type: p.type })), ...UPLINK_PLUGINS.map((p) => ({ kind: 'uplink', type: p.type }))];

describe('one folder per plugin', () => {
  it.each(plugins)('$kind/$type holds its registration, config schema and a README whose sample config validates', ({ kind, type }) => {
    const dir = join(root, 'agent', kind, type);
    for (const file of ['plugin.ts', 'config.ts', 'README.md']) expect(existsSync(join(dir, file)), `${kind}/${type}/${file}`).toBe(true);
    const sample = /```yaml\n([\s\S]*?)```/.exec(readFileSync(join(dir, 'README.md'), 'utf8'))?.[1];
    expect(sample, `${kind}/${type}/README.md has a yaml sample`).toBeDefined();
    const block = parse(sample!) as Record<string, unknown>;
    const config = { version: 1, device: {}, store: {}, batch: {}, clock: {}, log: {}, sources: {}, ...block };
    const result = configSchema.safeParse(config);
    expect(result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([]);
    const section = (kind === 'sources' ? Object.values(block.sources as object)[0] : block.uplink) as { type: string };
    expect(section.type).toBe(type);
  });
});
