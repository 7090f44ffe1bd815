import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyStoreChain } from '../../agent/identity/chain-verify.js';
import { batchCidText } from '../../agent/identity/cid.js';
import { Identity } from '../../agent/identity/keys.js';
import { verifyReceipt } from '../../agent/identity/receipt.js';
import { startReceiver, type RunningReceiver } from '../../agent/receiver/server.js';
import { BatchStore } from '../../agent/store/batch-store.js';
import { openDatabase } from '../../agent/store/database.js';
import { EventStore } from '../../agent/store/event-store.js';
import { ReadingStore } from '../../agent/store/reading-store.js';
import { READING_FLAGS } from '../../agent/identity/batch-v3.js';
import { batchEncoder } from '../../agent/pipeline/batch-encoder.js';

const tempDir = () => mkdtempSync(join(tmpdir(), 'ea-v3-'));
const running: RunningReceiver[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});

async function receiver() {
  const r = await startReceiver({ host: '127.0.0.1', port: 0, dataDir: tempDir(), logger: pino({ level: 'silent' }) });
  running.push(r);
  return r;
}

async function post(url: string, envelope: Uint8Array) {
  const res = await fetch(`${url}/v1/batches`, { method: 'POST', headers: { 'content-type': 'application/cbor' }, body: envelope });
  return { status: res.status, json: (await res.json()) as Record<string, string> };
}

function agentStore() {
  const db = openDatabase(join(tempDir(), 'edge-agent.db'));
  return { db, readings: new ReadingStore(db, 1), events: new EventStore(db, 1), batches: new BatchStore(db) };
}

const cut = (s: ReturnType<typeof agentStore>, device: Identity, extra: { sealTo?: Uint8Array } = {}) =>
  s.batches.cutBatch(1000, batchEncoder(device, { bootCounter: 1, clockSynced: true, now: 1_763_000_100_000, ...extra }))!;

describe('version-3 batches from the agent store to the receiver', () => {
  it('writes versions 1 and 2 as before and version 3 only for what needs it', () => {
    const s = agentStore();
    const device = Identity.generate();
    s.readings.commit([{ source: 'mqtt', readings: [{ sensor: 't', ts: 1, timeSource: 'sensor', value: 1 }] }]);
    expect(cut(s, device).body.fmt).toBe('edge-agent/batch/1');
    s.readings.commit([{ source: 'mqtt', readings: [{ sensor: 't', ts: 2, timeSource: 'sensor', value: 1, flags: READING_FLAGS.stuck }] }]);
    expect(cut(s, device).body.fmt).toBe('edge-agent/batch/3');
    s.events.record({ kind: 'clock.step', key: '', ts: 5, detail: { step_ms: -1000 } });
    const eventsOnly = cut(s, device);
    expect(eventsOnly.version).toBe(3);
    expect(eventsOnly.body.n).toBe(0);
    expect(cut(s, device, {})).toBeNull();
    expect(verifyStoreChain(s.db).problems).toEqual([]);
  });

  it('the receiver verifies a chain across versions, stores events and flags, and signs a version-2 receipt with the CID', async () => {
    const rcv = await receiver();
    const s = agentStore();
    const device = Identity.generate();
    s.readings.commit([{ source: 'mqtt', readings: [{ sensor: 'pump/t', ts: 10, timeSource: 'sensor', value: 20 }] }]);
    const b1 = cut(s, device);
    s.readings.commit([{ source: 'mqtt', readings: [{ sensor: 'pump/t', ts: 11, timeSource: 'sensor', value: 99, flags: READING_FLAGS.out_of_range }] }]);
    s.events.record({ kind: 'source.session_lost', key: 'mqtt', ts: 12, detail: { broker: 'mqtt://127.0.0.1:1883' } });
    const b2 = cut(s, device);
    expect((await post(rcv.url, b1.envelope)).json.status).toBe('accepted');
    const reply = await post(rcv.url, b2.envelope);
    expect(reply.json.status).toBe('accepted');
    const receipt = verifyReceipt(Buffer.from(reply.json.receipt!, 'base64'), { receiverKey: rcv.publicKey, device: device.publicKey, seq: 2, batchHash: b2.hash });
    expect(receipt).toMatchObject({ fmt: 'edge-agent/receipt/2', cid: batchCidText(b2.envelope), dur: 'disk' });
    const events = (await (await fetch(`${rcv.url}/v1/devices/${device.deviceId}/events`)).json()) as unknown[];
    expect(events).toEqual([{ event_id: 1, batch_seq: 2, ts: 12, kind: 'source.session_lost', key: 'mqtt', detail: { broker: 'mqtt://127.0.0.1:1883' } }]);
    expect((await (await fetch(`${rcv.url}/v1/devices/${device.deviceId}/events?after=1`)).json()) as unknown[]).toEqual([]);
    expect((await post(rcv.url, b2.envelope)).json.status).toBe('duplicate');
  });

  it('a batch sealed to the receiver is opened and stored; sealed to another key it is refused as undecryptable', async () => {
    const rcv = await receiver();
    const s = agentStore();
    const device = Identity.generate();
    s.readings.commit([{ source: 'mqtt', readings: [{ sensor: 'secret/sensor', ts: 10, timeSource: 'sensor', value: 42 }] }]);
    const sealed = cut(s, device, { sealTo: rcv.publicKey });
    expect(Buffer.from(sealed.envelope).includes(Buffer.from('secret/sensor'))).toBe(false);
    expect((await post(rcv.url, sealed.envelope)).json.status).toBe('accepted');
    const stats = (await (await fetch(`${rcv.url}/v1/stats`)).json()) as { readings: number };
    expect(stats.readings).toBe(1);
    s.readings.commit([{ source: 'mqtt', readings: [{ sensor: 'secret/sensor', ts: 11, timeSource: 'sensor', value: 43 }] }]);
    const wrong = cut(s, device, { sealTo: Identity.generate().publicKey });
    const refused = await post(rcv.url, wrong.envelope);
    expect(refused.status).toBe(400);
    expect(refused.json.reason).toBe('undecryptable');
    expect(verifyStoreChain(s.db).problems).toEqual([]);
  });
});
