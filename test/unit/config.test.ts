import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../agent/config/load.js';

const valid = `version: 1
device: {}
store: {}
batch:
  max_readings: 100
sources:
  mqtt:
    type: mqtt
    url: mqtt://127.0.0.1:1883
    topics: ['sensors/#']
    client_id: gw1
clock: {}
log: {}
`;

describe('config validation', () => {
  it('fills defaults for a minimal valid config', () => {
    const c = parseConfig(valid, 'edge-agent.yaml');
    expect(c.batch).toEqual({ max_readings: 100, max_age_ms: 5000, max_pending: 100, format: 'auto' });
    expect(c.store.path).toBe('edge-agent.db');
    const mqtt = c.sources.mqtt!;
    expect(mqtt.type === 'mqtt' && mqtt.session_expiry_s).toBe(604800);
  });

  it('names an unknown key with its path and line', () => {
    const text = valid.replace('  max_readings: 100', '  max_readings: 100\n  max_reading: 5');
    expect(() => parseConfig(text, 'edge-agent.yaml')).toThrow(/edge-agent\.yaml:6: batch\.max_reading: unknown key/);
  });

  it('reports every problem at once, each with key and line', () => {
    const text = valid.replace('max_readings: 100', 'max_readings: -1').replace("topics: ['sensors/#']", "topics: ['sensors/#/x']");
    let message = '';
    try {
      parseConfig(text, 'c.yaml');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/c\.yaml:5: batch\.max_readings: /);
    expect(message).toMatch(/c\.yaml:10: sources\.mqtt\.topics\.0: is not a valid MQTT topic filter/);
  });

  it('rejects a wrong source type and broken YAML with a line number', () => {
    expect(() => parseConfig(valid.replace('type: mqtt', 'type: modbus'), 'c.yaml')).toThrow(/c\.yaml:\d+: sources\.mqtt\.type/);
    expect(() => parseConfig('version: 1\nstore: [\n', 'c.yaml')).toThrow(/invalid YAML:\n\s+c\.yaml:\d+:/);
    expect(() => parseConfig('', 'c.yaml')).toThrow(/version/);
  });
});
