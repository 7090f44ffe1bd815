import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ClockStatus } from '../../agent/clock/clock-status.js';
import { parseConfig } from '../../agent/config/load.js';
import { AgentState } from '../../agent/health/agent-state.js';
import { checkHealth } from '../../agent/health/healthz.js';
import { Metrics } from '../../agent/health/metrics.js';
import { Observability } from '../../agent/health/observability.js';
import { Identity } from '../../agent/identity/keys.js';
import { BatchStore } from '../../agent/store/batch-store.js';
import type { Reading } from '../../agent/types.js';
import { freshStore } from '../helpers/store.js';
import { batchEncoder } from '../../agent/pipeline/batch-encoder.js';

const silent = pino({ level: 'silent' });

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const reading = (sensor: string, ts: number, value = 1): Reading => ({ sensor, ts, value, timeSource: 'sensor' });

function setup(maxSensorLabels = 500, clock: 'always' | 'never' = 'always') {
  const { db, store, writer } = freshStore('health');
  const state = new AgentState(db, new BatchStore(db), [], new ClockStatus(clock), db.name, undefined, { deviceId: 'did:key:test', boot: 1, startedAt: 0, batchMaxAgeMs: 5000 });
  const obs = new Observability(db, { listen: '127.0.0.1:9464', bind_all_interfaces: false, max_pending_batch_age_s: 600, max_sensor_labels: maxSensorLabels }, silent);
  obs.watchWriter(writer);
  obs.metrics.bindState(state);
  return { db, store, writer, state, metrics: obs.metrics };
}

describe('metrics', () => {
  it('counts committed readings per source and sensor, without the duplicates the store refused', async () => {
    const { writer, metrics } = setup();
    await writer.submit({ source: 'mqtt', readings: [reading('a', 1000), reading('a', 2000), reading('b', 1000)] });
    // Same sensor and sensor time again: the store keeps the first, and so does the metric.
    await writer.submit({ source: 'mqtt', readings: [reading('a', 2000), reading('a', 3000)] });
    const text = await metrics.render();
    expect(sample(text, 'edge_agent_readings_committed_total{source="mqtt",sensor="a"}')).toBe(3);
    expect(sample(text, 'edge_agent_readings_committed_total{source="mqtt",sensor="b"}')).toBe(1);
    expect(sample(text, 'edge_agent_readings_unbatched')).toBe(4);
    expect(sample(text, 'edge_agent_counter_duplicates_total{label="mqtt"}')).toBe(1);
  });

  it('caps sensor labels: the sensors past the cap share "_other" and the overflow is counted', async () => {
    const { writer, metrics } = setup(2);
    await writer.submit({ source: 's', readings: ['a', 'b', 'c', 'd', 'a'].map((s, i) => reading(s, 1000 + i)) });
    await new Promise(setImmediate); // the writer tells its listeners in the turn after the acknowledgements
    const text = await metrics.render();
    expect(sample(text, 'edge_agent_readings_committed_total{source="s",sensor="a"}')).toBe(2);
    expect(sample(text, 'edge_agent_readings_committed_total{source="s",sensor="b"}')).toBe(1);
    expect(sample(text, 'edge_agent_readings_committed_total{source="s",sensor="_other"}')).toBe(2);
    expect(text).not.toMatch(/sensor="c"/);
    expect(sample(text, 'edge_agent_metrics_label_overflow_total{label="sensor"}')).toBe(2);
  });

  it('exports every counters table row, one family per name, including names added later', async () => {
    const { store, metrics } = setup();
    store.addCounter('rejected', 'mqtt: not JSON', 3);
    let text = await metrics.render();
    expect(sample(text, 'edge_agent_counter_rejected_total{label="mqtt: not JSON"}')).toBe(3);
    expect(text).toMatch(/# TYPE edge_agent_counter_rejected_total counter/);
    store.addCounter('dropped', 'disk budget', 7);
    store.addCounter('rejected', 'mqtt: not JSON', 1);
    text = await metrics.render();
    expect(sample(text, 'edge_agent_counter_dropped_total{label="disk budget"}')).toBe(7);
    expect(sample(text, 'edge_agent_counter_rejected_total{label="mqtt: not JSON"}')).toBe(4);
  });

  it('sums counter labels past the per-family cap under "_other", keeping the largest', async () => {
    const metrics = new Metrics({ maxSensorLabels: 10, maxCounterLabels: 2 });
    const rows = [
      { name: 'rejected', label: 'x', value: 1 },
      { name: 'rejected', label: 'y', value: 50 },
      { name: 'rejected', label: 'z', value: 20 },
      { name: 'rejected', label: 'w', value: 2 },
    ];
    metrics.bindState({
      batchCounts: () => ({}),
      oldestPendingCreatedAt: () => null,
      unbatched: () => ({ count: 0, oldestReceivedAt: null }),
      storeBytes: () => 0,
      counters: () => rows,
      sources: () => [],
      clockSynced: () => true,
      uplink: () => undefined,
    });
    const text = await metrics.render();
    expect(sample(text, 'edge_agent_counter_rejected_total{label="y"}')).toBe(50);
    expect(sample(text, 'edge_agent_counter_rejected_total{label="z"}')).toBe(20);
    expect(sample(text, 'edge_agent_counter_rejected_total{label="_other"}')).toBe(3);
  });

  it('records inference runs, alert transitions and uplink attempts for the components that call them', async () => {
    const { metrics } = setup(1);
    metrics.inferenceRun('pump-ae', 0.004, 3);
    metrics.inferenceRun('pump-ae', 0.006, 2);
    metrics.alertChanged('pump-ae', 'pump1/temp', true);
    metrics.alertChanged('pump-ae', 'pump2/temp', true); // past the cap of 1 key
    metrics.uplinkAttempt(0.02, 'delivered');
    metrics.uplinkAttempt(1.5, 'failed');
    const text = await metrics.render();
    expect(sample(text, 'edge_agent_inference_duration_seconds_count{model="pump-ae"}')).toBe(2);
    expect(sample(text, 'edge_agent_inference_duration_seconds_bucket{le="0.005",model="pump-ae"}')).toBe(1);
    expect(sample(text, 'edge_agent_inference_windows_total{model="pump-ae"}')).toBe(5);
    expect(sample(text, 'edge_agent_anomaly_alerts_total{model="pump-ae",key="pump1/temp",direction="raised"}')).toBe(1);
    expect(sample(text, 'edge_agent_anomaly_alerts_total{model="pump-ae",key="_other",direction="raised"}')).toBe(1);
    expect(sample(text, 'edge_agent_anomaly_alert_active{model="pump-ae",key="pump1/temp"}')).toBe(1);
    expect(text).not.toMatch(/anomaly_alert_active\{model="pump-ae",key="_other"\}/);
    expect(sample(text, 'edge_agent_uplink_errors_total{outcome="failed"}')).toBe(1);
    expect(sample(text, 'edge_agent_uplink_request_duration_seconds_count{outcome="delivered"}')).toBe(1);
  });
});

describe('health checks', () => {
  it('fails the buffer check when committed readings wait for a batch far past batch.max_age_ms', async () => {
    const { writer, state } = setup();
    await writer.submit({ source: 'mqtt', readings: [reading('a', 1000)] });
    const now = Date.now();
    expect(checkHealth(state, { maxPendingBatchAgeS: 600 }, now + 1000)).toMatchObject({ ready: true, status: 'ok' });
    const late = checkHealth(state, { maxPendingBatchAgeS: 600 }, now + 120_000);
    expect(late.ready).toBe(false);
    expect(late.checks.buffer).toEqual({ ok: false, reason: expect.stringMatching(/^1 readings wait for a batch, the oldest for 12\d s \(batch\.max_age_ms is 5000\): batching is stalled$/) });
  });

  it('does not call readings held back by batch.max_pending stalled, and counts the buffer only up to a bound', async () => {
    const { db, writer } = freshStore('health-held');
    const batches = new BatchStore(db);
    const state = new AgentState(db, batches, [], new ClockStatus('always'), db.name, { url: 'http://x', consecutiveFailures: () => 3 }, {
      deviceId: 'd',
      boot: 1,
      startedAt: 0,
      batchMaxAgeMs: 5000,
      maxPendingBatches: 1,
    });
    await writer.submit({ source: 'mqtt', readings: [reading('a', 1000)] });
    batches.cutBatch(10, batchEncoder(Identity.generate(), { bootCounter: 1, clockSynced: true, now: Date.now() }));
    await writer.submit({ source: 'mqtt', readings: [reading('a', 2000), reading('a', 3000), reading('b', 3000)] });
    expect(state.unbatchedUpTo(2)).toMatchObject({ count: 2, more: true });
    expect(state.unbatchedUpTo(3)).toMatchObject({ count: 3, more: false });
    const h = checkHealth(state, { maxPendingBatchAgeS: 60 }, Date.now() + 120_000);
    expect(h.checks.buffer).toEqual({ ok: true, reason: expect.stringMatching(/^3 readings held unbatched while 1 batches wait for the uplink \(batch\.max_pending 1\), the oldest for 12\d s$/) });
    expect(h.checks.uplink).toEqual({ ok: false, reason: expect.stringMatching(/^1 batches undelivered, the oldest \(#1\) for 12\d s \(limit http\.max_pending_batch_age_s 60 s\); 3 failed attempts in a row/) });
  });

  it('calls a clock not known to be synchronised degraded (still ready), with what to do', () => {
    const { state } = setup(500, 'never');
    const h = checkHealth(state, { maxPendingBatchAgeS: 600 });
    expect(h).toMatchObject({ ready: true, status: 'degraded' });
    expect(h.checks.clock).toEqual({ ok: false, degraded: true, reason: expect.stringMatching(/not known to be synchronised \(clock\.synced: never\).*clock\.synced: always/) });
  });

  it('says how much of the store budget is used', async () => {
    const { db } = freshStore('health-budget');
    const state = new AgentState(db, new BatchStore(db), [], new ClockStatus('always'), db.name, undefined, { deviceId: 'd', boot: 1, startedAt: 0, batchMaxAgeMs: 5000, storeMaxBytes: 64 * 1048576 });
    expect(checkHealth(state, { maxPendingBatchAgeS: 600 }).checks.store.reason).toMatch(/is writable \(0\.\d MiB of the 64\.0 MiB budget \(store\.max_bytes\)\)$/);
  });

  it('reports a store it cannot write to', () => {
    const { db, state } = setup();
    db.close();
    const h = checkHealth(state, { maxPendingBatchAgeS: 600 });
    expect(h.checks.store).toEqual({ ok: false, reason: expect.stringMatching(/is not writable: The database connection is not open/) });
    expect(h.checks.buffer).toEqual({ ok: false, reason: "buffer check could not run: The database connection is not open" });
    expect(h.ready).toBe(false);
  });
});

describe('http config', () => {
  const base = `version: 1\ndevice: {}\nstore: {}\nbatch: {}\nsources: {}\nclock: {}\nlog: {}\n`;
  it('defaults to loopback and refuses every-interface addresses unless bind_all_interfaces is set', () => {
    expect(parseConfig(`${base}http: {}\n`, 'f.yaml').http).toEqual({ listen: '127.0.0.1:9464', bind_all_interfaces: false, max_pending_batch_age_s: 600, max_sensor_labels: 500 });
    expect(() => parseConfig(`${base}http: { listen: "0.0.0.0:9464" }\n`, 'f.yaml')).toThrow(/f\.yaml:8: http\.listen: 0\.0\.0\.0 listens on every interface/);
    expect(() => parseConfig(`${base}http: { listen: "[::]:9464" }\n`, 'f.yaml')).toThrow(/http\.listen: :: listens on every interface/);
    expect(parseConfig(`${base}http: { listen: "0.0.0.0:9464", bind_all_interfaces: true }\n`, 'f.yaml').http?.listen).toBe('0.0.0.0:9464');
    expect(() => parseConfig(`${base}http: { listen: "127.0.0.1:70000" }\n`, 'f.yaml')).toThrow(/port 70000 is out of range/);
    expect(() => parseConfig(`${base}http: { listen: "gateway.local:9464" }\n`, 'f.yaml')).toThrow(/http\.listen: must be HOST:PORT: IPv4:PORT/);
  });
});
