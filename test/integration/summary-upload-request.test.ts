/**
 * Issue 14, summary mode: "the raw readings kept locally ... uploadable on request", asked by the
 * network. The operator of the receiver asks at POST /v1/devices/DID/upload-requests; the receiver
 * signs the request and offers it in its answer to the device's next batch; the agent checks it
 * under its receiver key, releases the kept readings of that range, and answers with signed
 * report.full_rate events naming the request; the readings arrive in verified batches and the
 * request shows done. Real mosquitto, agent and receiver processes.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, startReceiverProcess, tempDir, type RunningReceiver } from '../helpers/setup.js';
import { query } from '../helpers/db-query.js';

const T0 = 1_763_000_000_000; // ms, sensor times

interface RequestView {
  id: string;
  state: 'pending' | 'done';
  sensors: string[];
  from: number;
  to: number;
  by: string;
  released: Record<string, number>;
}

describe('an upload requested by the network (receiver endpoint, summary mode; real mosquitto, agent, receiver)', () => {
  let broker: Broker;
  let receiver: RunningReceiver;
  beforeAll(async () => {
    broker = await startMosquitto();
    receiver = await startReceiverProcess(tempDir('upload-receiver'));
  });
  afterAll(async () => {
    await receiver?.proc.stop();
    await broker?.stop();
  });

  it('is signed by the receiver, carried to the agent in a batch answer, and answered with the kept readings in verified batches', async () => {
    const dir = tempDir('upload-agent');
    const init = cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--mqtt-topic', 'sensors/#', '--uplink-url', `${receiver.baseUrl}/v1/batches`, '--receiver-key', receiver.publicKey]);
    expect(init.code, init.stderr).toBe(0);
    const device = /device id (did:key:\w+)/.exec(init.stdout)![1]!;
    patchConfig(dir, [
      [['batch', 'max_age_ms'], 200],
      [['adaptive', 'summary'], { sensors: ['plant/#'], interval_ms: 60_000 }],
    ]);
    const url = `${receiver.baseUrl}/v1/devices/${device}/upload-requests`;
    const post = (body: unknown) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const receiverDb = join(receiver.dataDir, 'receiver.db');
    const agent = cliBackground(['run', '--data-dir', dir]);
    try {
      await agent.waitForReady();
      const pub = await connectPublisher(broker.url);
      // A minute of a summarized sensor, kept locally (one signed report.summary goes up instead).
      await publishAll(pub, Array.from({ length: 60 }, (_, i) => ({ topic: 'sensors/plant/flow', payload: JSON.stringify({ v: 10 + i / 10, t: (T0 + i * 1000) / 1000 }) })));
      await waitFor('60 kept readings', () => query<{ n: number }>(join(dir, 'edge-agent.db'), "SELECT count(*) AS n FROM readings WHERE sensor = 'plant/flow' AND batch_seq <= 0")[0]!.n === 60, 60_000);
      expect(query(receiverDb, "SELECT 1 FROM readings WHERE sensor = 'plant/flow'")).toEqual([]);

      // Bad requests are refused at the boundary, with what is wrong.
      const bad = await post({ sensors: [], to: 'soon' });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { detail: string }).detail).toMatch(/^sensors: /);
      expect((await post({ sensors: ['plant/flow'], from: T0 + 10_000, to: T0 })).status).toBe(400);

      // The network asks for 30 s of it.
      const asked = await post({ sensors: ['plant/flow'], from: T0 + 10_000, to: new Date(T0 + 39_000).toISOString(), by: 'ticket-77' });
      expect(asked.status).toBe(201);
      const request = (await asked.json()) as RequestView;
      expect(request).toMatchObject({ state: 'pending', sensors: ['plant/flow'], from: T0 + 10_000, to: T0 + 39_000, by: 'ticket-77' });
      // Any batch carries the offer back: a reading of a sensor that is not summarized makes one.
      await publishAll(pub, [{ topic: 'sensors/other/x', payload: '1' }]);
      const done = await waitFor('the request done at the receiver', async () => {
        const list = (await (await fetch(url)).json()) as RequestView[];
        return list.find((r) => r.id === request.id && r.state === 'done');
      }, 90_000, 250).catch((err: unknown) => {
        console.log('agent log (upload, warn, error):', agent.output().split('\n').filter((l) => /upload|warn|error/i.test(l)).slice(-10).join('\n'));
        console.log('agent events:', JSON.stringify(query(join(dir, 'edge-agent.db'), "SELECT kind, key, detail, batch_seq FROM events")));
        throw err;
      });
      expect(done.released).toEqual({ 'plant/flow': 30 });
      const uploaded = await waitFor('the 30 readings at the receiver', () => {
        const rows = query<{ ts: number }>(receiverDb, "SELECT ts FROM readings WHERE sensor = 'plant/flow' ORDER BY ts");
        return rows.length >= 30 && rows;
      }, 90_000, 250);
      expect(uploaded.map((r) => r.ts)).toEqual(Array.from({ length: 30 }, (_, i) => T0 + 10_000 + i * 1000));
      // The device's answer is a signed event of a verified batch.
      const events = (await (await fetch(`${receiver.baseUrl}/v1/devices/${device}/events`)).json()) as { kind: string; key: string; detail: Record<string, unknown> }[];
      expect(events.filter((e) => e.kind === 'report.full_rate').map((e) => e.detail)).toEqual([expect.objectContaining({ reason: 'upload', by: 'ticket-77', request: request.id, released: 30, from_t: T0 + 10_000, to_t: T0 + 39_000 })]);
      await pub.endAsync();
    } finally {
      await agent.stop();
    }
  }, 240_000);
});
