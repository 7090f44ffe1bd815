import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, startReceiverProcess, tempDir, type RunningReceiver } from '../helpers/setup.js';

interface Health {
  status: string;
  ready: boolean;
  checks: Record<string, { ok: boolean; reason: string }>;
}

/** The value of one sample in Prometheus text, or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function rawGet(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('health endpoint: /healthz, /metrics through a running agent', () => {
  let broker: Broker;
  let receiver: RunningReceiver;
  let agent: LongRunning;
  let port: number;
  const A = tempDir('health');
  const base = () => `http://127.0.0.1:${port}`;
  const health = async () => {
    const res = await fetch(`${base()}/healthz`);
    return { code: res.status, body: (await res.json()) as Health };
  };
  const metrics = async () => (await fetch(`${base()}/metrics`)).text();

  beforeAll(async () => {
    broker = await startMosquitto();
    receiver = await startReceiverProcess(tempDir('health-receiver'));
    const init = cli(['init', '--data-dir', A, '--mqtt-url', broker.url, '--uplink-url', `${receiver.baseUrl}/v1/batches`, '--http-listen', '127.0.0.1:0']);
    expect(init.code, init.stderr).toBe(0);
    patchConfig(A, [
      [['clock', 'synced'], 'always'],
      [['batch', 'max_age_ms'], 100],
      [['uplink', 'retry_initial_ms'], 100],
      [['uplink', 'retry_max_ms'], 300],
      [['http', 'max_pending_batch_age_s'], 2],
      [['http', 'max_sensor_labels'], 3],
    ]);
    agent = cliBackground(['run', '--data-dir', A]);
    // The agent binds port 0 itself and reports the port it got on its ready line.
    port = (await agent.waitForReady()).http!.port;
  });
  afterAll(async () => {
    await agent?.stop();
    await receiver?.proc.stop();
    await broker?.stop();
  });

  it('answers 200 with every check and its reason while readings flow and are delivered', async () => {
    const pub = await connectPublisher(broker.url);
    await publishAll(pub, [
      { topic: 'sensors/pump1/temp', payload: '21.5' },
      { topic: 'sensors/pump1/temp', payload: '21.75' },
      { topic: 'sensors/pump1/rpm', payload: '1450' },
      { topic: 'sensors/pump1/rpm', payload: 'not a number' },
    ]);
    await pub.endAsync();
    await waitFor('3 readings at the receiver', async () => (await receiver.stats()).readings >= 3 || undefined);
    const h = await waitFor('healthy', async () => {
      const r = await health();
      return r.code === 200 ? r : undefined;
    });
    expect(h.body).toMatchObject({ status: 'ok', live: true, ready: true });
    expect(h.body.checks.store).toMatchObject({ ok: true, reason: expect.stringMatching(/is writable/) });
    expect(h.body.checks.sources).toEqual({ ok: true, reason: '1 connected: mqtt' });
    expect(h.body.checks.uplink.ok).toBe(true);
    expect(h.body.checks.clock.ok).toBe(true);
    expect(Object.keys(h.body.checks).sort()).toEqual(['buffer', 'clock', 'drops', 'sources', 'store', 'uplink']);

    const live = await fetch(`${base()}/healthz/live`);
    expect(live.status).toBe(200);
  });

  it('/metrics counts readings in and out per source and sensor, rejects by reason, backlog, uplink latency, store size', async () => {
    // Both facts: the bad message's rejection may commit after the good readings (at most one commit
    // per store.commit_interval_ms, the first at once), so their delivery does not imply it.
    const text = await waitFor('delivered readings and the rejection counted', async () => {
      const t = await metrics();
      return sample(t, 'edge_agent_readings_delivered_total{source="mqtt",sensor="pump1/temp"}') === 2 &&
        sample(t, 'edge_agent_counter_rejected_total{label="mqtt: not JSON, SenML or a number"}') === 1
        ? t
        : undefined;
    });
    expect(sample(text, 'edge_agent_readings_committed_total{source="mqtt",sensor="pump1/temp"}')).toBe(2);
    expect(sample(text, 'edge_agent_readings_committed_total{source="mqtt",sensor="pump1/rpm"}')).toBe(1);
    expect(sample(text, 'edge_agent_readings_delivered_total{source="mqtt",sensor="pump1/rpm"}')).toBe(1);
    expect(sample(text, 'edge_agent_counter_rejected_total{label="mqtt: not JSON, SenML or a number"}')).toBe(1);
    expect(sample(text, 'edge_agent_batches{state="pending"}')).toBe(0);
    expect(sample(text, 'edge_agent_batches{state="delivered"}')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'edge_agent_uplink_request_duration_seconds_count{outcome="delivered"}')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'edge_agent_source_connected{source="mqtt",type="mqtt"}')).toBe(1);
    expect(sample(text, 'edge_agent_clock_synced')).toBe(1);
    expect(sample(text, 'edge_agent_store_bytes')).toBeGreaterThan(4096);
    expect(text).toMatch(/^edge_agent_process_resident_memory_bytes \d+/m);
    expect((await fetch(`${base()}/metrics`)).headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('caps sensor label values: past http.max_sensor_labels new sensors are counted under "_other"', async () => {
    const pub = await connectPublisher(broker.url);
    // pump1/temp and pump1/rpm hold two of the 3 labels; s1 takes the last one, s2 and s3 overflow.
    await publishAll(pub, ['s1', 's2', 's3', 's3'].map((s) => ({ topic: `sensors/${s}`, payload: '1' })));
    await pub.endAsync();
    const text = await waitFor('overflow counted', async () => {
      const t = await metrics();
      return sample(t, 'edge_agent_readings_committed_total{source="mqtt",sensor="_other"}') === 3 ? t : undefined;
    });
    expect(sample(text, 'edge_agent_readings_committed_total{source="mqtt",sensor="s1"}')).toBe(1);
    expect(text).not.toMatch(/sensor="s2"/);
    expect(sample(text, 'edge_agent_metrics_label_overflow_total{label="sensor"}')).toBeGreaterThanOrEqual(3);
  });

  it('refuses what it should: writes (405), unknown paths (404), a foreign Host header (421)', async () => {
    expect((await rawGet(port, '/healthz', {}, 'POST')).status).toBe(405);
    expect((await rawGet(port, '/nope')).status).toBe(404);
    const rebound = await rawGet(port, '/api/status', { host: `attacker.example:${port}` });
    expect(rebound.status).toBe(421);
    expect((await rawGet(port, '/api/status', { host: `localhost:${port}` })).status).toBe(200);
  });

  it('turns 503 with the reason when batches stop being delivered, and when the broker goes away', async () => {
    await receiver.proc.stop();
    const pub = await connectPublisher(broker.url);
    await publishAll(pub, [{ topic: 'sensors/pump1/temp', payload: '22' }]);
    await pub.endAsync();
    const stalled = await waitFor(
      '503 for the stalled uplink',
      async () => {
        const r = await health();
        return r.code === 503 ? r : undefined;
      },
      15_000,
    );
    expect(stalled.body.ready).toBe(false);
    expect(stalled.body.checks.uplink).toEqual({
      ok: false,
      reason: expect.stringMatching(/^\d+ batches undelivered, the oldest \(#\d+\) for \d+ s \(limit http\.max_pending_batch_age_s 2 s\); \d+ failed attempts in a row, last error: .*(ECONNREFUSED|fetch failed)/),
    });
    expect(stalled.body.checks.store.ok).toBe(true);
    expect(sample(await metrics(), 'edge_agent_uplink_consecutive_failures')).toBeGreaterThan(0);

    await broker.stop();
    const down = await waitFor('sources check fails', async () => {
      const r = await health();
      return r.body.checks.sources.ok ? undefined : r;
    });
    expect(down.code).toBe(503);
    expect(down.body.checks.sources.reason).toMatch(/^mqtt \(mqtt\) not connected to mqtt:\/\/127\.0\.0\.1:\d+/);
  });
});

describe('health endpoint configuration', () => {
  it('refuses 0.0.0.0 unless bind_all_interfaces is set, naming the key', () => {
    const dir = tempDir('health-wild');
    const r = cli(['init', '--data-dir', dir, '--http-listen', '0.0.0.0:9464']);
    expect(r.code).toBe(2);
    // init names the flag the value came from (issue 12).
    expect(r.stderr).toMatch(/--http-listen: 0\.0\.0\.0 listens on every interface .*bind_all_interfaces: true/);
    expect(cli(['init', '--data-dir', dir, '--http-listen', '127.0.0.1:1', '--no-http']).code).toBe(2);
  });
});
