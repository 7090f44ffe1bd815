import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../agent/config/load.js';
import { changedKeys, classifyChanges } from '../../agent/run/config-reload.js';

const base = `version: 1
device: {}
store: {}
batch: {}
sources:
  mqtt: { type: mqtt, url: 'mqtt://127.0.0.1:1883', topics: ['s/#'], client_id: gw1 }
inference:
  bindings:
    a: { model: stream-ad, sensors: ['p/#'] }
clock: {}
log: {}
`;
const cfg = (text: string) => parseConfig(text, 'edge-agent.yaml');

describe('config reload: which changed keys apply live', () => {
  it('names changed keys per binding and per source, and splits live from restart-needed', () => {
    const before = cfg(base);
    const after = cfg(
      base
        .replace('batch: {}', 'batch: { max_readings: 50 }')
        .replace("a: { model: stream-ad, sensors: ['p/#'] }", "a: { model: stream-ad, sensors: ['p/#'], alert: { on: 0.8 } }\n    b: { model: stream-ad, sensors: ['q/#'] }")
        .replace("topics: ['s/#']", "topics: ['t/#']")
        .replace('store: {}', 'store: { path: other.db }')
        .replace('log: {}', 'log: { level: debug }'),
    );
    expect(changedKeys(before, after)).toEqual(['batch.max_readings', 'inference.bindings.a', 'inference.bindings.b', 'log.level', 'sources.mqtt', 'store.path']);
    expect(classifyChanges(before, after)).toEqual({
      applied: ['batch.max_readings', 'inference.bindings.a', 'inference.bindings.b', 'log.level'],
      needsRestart: ['sources.mqtt', 'store.path'],
    });
    expect(classifyChanges(before, cfg(base))).toEqual({ applied: [], needsRestart: [] });
  });

  it('needs a restart to add an uplink or inference altogether, but not to add home_assistant', () => {
    const noInference = base.replace(/inference:\n {2}bindings:\n {4}a: .*\n/, '');
    const withHa = `${noInference}home_assistant: { url: 'mqtt://127.0.0.1:1883' }\nuplink: { type: http, url: 'http://127.0.0.1:1/v1/batches' }\n`;
    expect(classifyChanges(cfg(noInference), cfg(withHa))).toEqual({ applied: ['home_assistant'], needsRestart: ['uplink'] });
    expect(classifyChanges(cfg(noInference), cfg(base)).needsRestart).toEqual(['inference']);
  });
});
