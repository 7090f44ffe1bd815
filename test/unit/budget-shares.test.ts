import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../agent/config/load.js';
import { budgetShares, EVENTS_SHARE, minimumBudget, walLimitFor } from '../../agent/store/budget-shares.js';

const yaml = (maxBytes: number, maxPending = 100) => `version: 1
device: {}
store:
  max_bytes: ${maxBytes}
batch:
  max_pending: ${maxPending}
sources:
  mqtt: { type: mqtt, url: "mqtt://127.0.0.1:1883", topics: ["sensors/#"], client_id: gw }
uplink: { type: http, url: "http://127.0.0.1:8080/v1/batches" }
clock: {}
log: {}
`;

describe('the store budget against what cannot be dropped', () => {
  it('the minimum is exact: it holds the shares and one byte less does not', () => {
    for (const i of [
      { maxPending: 100, maxReadings: 1000, mqttInflight: [1000], hasUplink: true },
      { maxPending: 4, maxReadings: 500, mqttInflight: [1000, 20], hasUplink: true },
      { maxPending: 1, maxReadings: 1, mqttInflight: [], hasUplink: false },
    ]) {
      const m = minimumBudget(i);
      const need = budgetShares(i).undroppable;
      const left = (b: number) => b - 2 * walLimitFor(b) - Math.floor(b * EVENTS_SHARE);
      for (let k = 0; k < 64; k++) expect(left(m + k)).toBeGreaterThanOrEqual(need);
      if (m > 1024 * 1024) expect(left(m - 1)).toBeLessThan(need);
    }
  });

  it('config load refuses a budget below it, naming the key, its line and the exact minimum', () => {
    const min = minimumBudget({ maxPending: 100, maxReadings: 1000, mqttInflight: [1000], hasUplink: true });
    expect(() => parseConfig(yaml(4 * 1024 * 1024), 'edge-agent.yaml')).toThrow(new RegExp(`edge-agent.yaml:4: store.max_bytes: 4194304 bytes cannot hold .* the minimum is ${min} bytes`));
    expect(() => parseConfig(yaml(min - 1), 'edge-agent.yaml')).toThrow(/store\.max_bytes/);
    expect(parseConfig(yaml(min), 'edge-agent.yaml').store.max_bytes).toBe(min);
    expect(parseConfig(yaml(4 * 1024 * 1024, 4), 'edge-agent.yaml').store.max_bytes).toBe(4 * 1024 * 1024);
  });
});
