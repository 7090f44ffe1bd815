import mqtt from 'mqtt';
import { connect as natsConnect } from 'nats';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBatch, hex, ZERO_HASH, type SignedBatch } from '../../agent/identity/batch-format.js';
import { buildBatchV3 } from '../../agent/identity/batch-v3.js';
import { Identity } from '../../agent/identity/keys.js';
import { verifyReceipt } from '../../agent/identity/receipt.js';
import { createLogger } from '../../agent/log.js';
import { startReceiver, type RunningReceiver } from '../../agent/receiver/server.js';
import { BatchLog, STREAM } from '../../agent/receiver/fleet/batch-log.js';
import type { StoredReading } from '../../agent/types.js';
import { fleetUp, makeReceiverKey, startReplica, type Fleet, type Replica } from '../../scripts/fleet/lib/harness.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { tempDir } from '../helpers/setup.js';
import { SensorKeyRegistry } from '../../agent/receiver/sensor-key-registry.js';
import { attestationDigest, encodeAttestationMessage } from '../../agent/identity/sensor-attestation.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A gateway's chain built by hand, so tests can send batches out of order, twice or forked. */
function chain(identity: Identity, count: number, readingsEach = 3, salt = 0): SignedBatch[] {
  const out: SignedBatch[] = [];
  let prev = ZERO_HASH;
  let id = 1;
  for (let seq = 1; seq <= count; seq++) {
    const readings: StoredReading[] = Array.from({ length: readingsEach }, (_, k) => ({ id: id++, boot: 1, sensor: 't', ts: 1_763_000_000_000 + seq * 1000 + k, timeSource: 'gateway-synced', value: seq + k / 10 + salt, source: 'test' }));
    const b = buildBatch(identity, { seq, prevHash: prev, bootCounter: 1, clockSynced: true, createdMs: 1_763_000_000_000 + seq }, readings);
    out.push(b);
    prev = b.hash;
  }
  return out;
}

async function post(url: string, body: Uint8Array): Promise<{ status: number; json: Record<string, unknown>; retryAfter: string | null }> {
  let res: Response;
  try {
    res = await fetch(`${url}/v1/batches`, { method: 'POST', headers: { 'content-type': 'application/cbor' }, body });
  } catch (err) {
    // A kept-alive socket the server closed (its 5 s idle timeout) just as fetch reused it: send
    // again, as an agent does. Sending a batch twice is safe by design (a duplicate, same receipt).
    if ((err as { cause?: { code?: string } }).cause?.code !== 'UND_ERR_SOCKET') throw err;
    res = await fetch(`${url}/v1/batches`, { method: 'POST', headers: { 'content-type': 'application/cbor' }, body });
  }
  return { status: res.status, json: (await res.json()) as Record<string, unknown>, retryAfter: res.headers.get('retry-after') };
}
const get = async (url: string, path: string) => {
  const res = await fetch(`${url}${path}`);
  return { status: res.status, json: (await res.json()) as unknown };
};

describe('fleet receiver: the same API and answers as the SQLite receiver, over NATS JetStream + PostgreSQL', () => {
  let fleet: Fleet;
  let key: ReturnType<typeof makeReceiverKey>;
  const replicas: Replica[] = [];
  let sqlite: RunningReceiver;
  let db: pg.Client;

  beforeAll(async () => {
    fleet = fleetUp();
    key = makeReceiverKey();
    replicas.push(await startReplica(fleet, 'a', key.file), await startReplica(fleet, 'b', key.file));
    sqlite = await startReceiver({ host: '127.0.0.1', port: 0, dataDir: tempDir('fleet-sqlite-twin'), logger: createLogger('silent'), ratePerS: 0 });
    db = new pg.Client({ connectionString: fleet.postgresUrl });
    await db.connect();
  }, 120_000);

  afterAll(async () => {
    await db?.end();
    await sqlite?.close();
    await Promise.all(replicas.map((r) => r.stop()));
    fleet?.down();
  });

  it('answers every case of the chain rules exactly as the SQLite receiver does', async () => {
    const gw = Identity.generate();
    const [b1, b2, b3] = chain(gw, 3) as [SignedBatch, SignedBatch, SignedBatch];
    const [f1, f2] = chain(gw, 2, 3, 0.5) as [SignedBatch, SignedBatch]; // a fork: other readings, same seqs
    const tampered = Uint8Array.from(b2.envelope);
    tampered[tampered.length - 1]! ^= 1;
    const steps: [string, Uint8Array][] = [
      ['seq 1', b1.envelope],
      ['seq 1 again', b1.envelope],
      ['another seq 1', f1.envelope],
      ['seq 3 before 2 (gap)', b3.envelope],
      ['a forked seq 2', f2.envelope],
      ['bad signature', tampered],
      ['seq 2, filling the gap', b2.envelope],
    ];
    const fleetUrl = replicas[0]!.url;
    const firstReceipt: Record<string, unknown> = {};
    for (const [what, envelope] of steps) {
      const [s, f] = [await post(sqlite.url, envelope), await post(fleetUrl, envelope)];
      const comparable = (a: Record<string, unknown>) => ({ ...a, receipt: typeof a.receipt });
      expect({ what, status: f.status, ...comparable(f.json) }).toEqual({ what, status: s.status, ...comparable(s.json) });
      if (f.json.receipt) {
        const r = new Uint8Array(Buffer.from(f.json.receipt as string, 'base64'));
        const seq = f.json.seq as number;
        const batch = [b1, b2, b3][seq - 1]!;
        verifyReceipt(r, { receiverKey: key.identity.publicKey, device: gw.publicKey, seq, batchHash: batch.hash });
        if (f.json.status === 'accepted') firstReceipt[seq] = f.json.receipt;
        else expect(f.json.receipt).toBe(firstReceipt[seq]); // a duplicate gets the receipt sent the first time
      }
    }
    expect((await post(fleetUrl, b1.envelope)).json.status).toBe('duplicate');
    const list = async (url: string) => ((await get(url, `/v1/devices/${gw.deviceId}/batches`)).json as { received_at: number }[]).map(({ received_at: _, ...rest }) => rest);
    expect(await list(fleetUrl)).toEqual(await list(sqlite.url));
    expect(await list(replicas[1]!.url)).toEqual(await list(sqlite.url)); // any replica answers the same
    const unknown = Identity.generate().deviceId;
    expect((await get(fleetUrl, `/v1/devices/${unknown}/batches`)).status).toBe(404);
    expect((await get(fleetUrl, `/v1/devices/not-a-did/alerts`)).status).toBe(404);
    expect((await get(fleetUrl, '/v1/receiver')).json).toEqual({ public_key: key.identity.deviceId });
    // Rejections are counted in PostgreSQL (off the answer path), so wait for the count to land.
    const pick = (s: Record<string, unknown>) => ({ batches: s.batches, readings: s.readings, gaps: s.gaps, rejected: s.rejected, rejected_by_reason: s.rejected_by_reason });
    const want = pick((await get(sqlite.url, '/v1/stats')).json as Record<string, unknown>);
    await waitFor('the fleet counts the same rejections', async () => JSON.stringify(pick((await get(fleetUrl, '/v1/stats')).json as Record<string, unknown>)) === JSON.stringify(want), 10_000, 100);
  });

  it('takes version-3 batches (events, flags, sealed) like the SQLite receiver; its receipts promise a quorum', async () => {
    const gw = Identity.generate();
    const readings: StoredReading[] = [{ id: 1, boot: 1, sensor: 't', ts: 1_763_000_000_000, timeSource: 'gateway-synced', value: 21.5, source: 'test', flags: 1 } as StoredReading];
    const events = [
      { id: 1, ts: 1_763_000_000_001, kind: 'clock.step', key: '', detail: { step_ms: 1200 } },
      { id: 2, ts: 1_763_000_000_002, kind: 'source.session_lost', key: 'mqtt' },
      { id: 3, ts: 1_763_000_000_003, kind: 'agent.heartbeat', key: '', detail: { interval_s: 60, boot: 1 } },
      { id: 4, ts: 1_763_000_030_000, kind: 'agent.stop', key: '' },
    ];
    const head = { seq: 1, prevHash: ZERO_HASH, bootCounter: 1, clockSynced: true, createdMs: 1_763_000_000_003 };
    const plain = buildBatchV3(gw, head, { readings, events });
    const gw2 = Identity.generate();
    const sealed = buildBatchV3(gw2, head, { readings, events }, { sealTo: key.identity.publicKey });
    const fleetUrl = replicas[0]!.url;
    for (const [what, b, dev] of [['plain', plain, gw], ['sealed', sealed, gw2]] as const) {
      const f = await post(fleetUrl, b.envelope);
      expect(f.status, what).toBe(200);
      expect(f.json.status).toBe('accepted');
      const body = verifyReceipt(new Uint8Array(Buffer.from(f.json.receipt as string, 'base64')), { receiverKey: key.identity.publicKey, device: dev.publicKey, seq: 1, batchHash: b.hash }) as { dur?: string };
      expect(body.dur).toBe('quorum');
      expect((await post(replicas[1]!.url, b.envelope)).json.receipt).toBe(f.json.receipt);
    }
    expect((await post(sqlite.url, plain.envelope)).json.status).toBe('accepted');
    const evFleet = (await get(fleetUrl, `/v1/devices/${gw.deviceId}/events`)).json;
    expect(evFleet).toEqual((await get(sqlite.url, `/v1/devices/${gw.deviceId}/events`)).json);
    expect(evFleet).toHaveLength(4);
    const range = '?from=1763000000000&to=1763000120000';
    const avFleet = (await get(fleetUrl, `/v1/devices/${gw.deviceId}/availability${range}`)).json;
    expect(avFleet).toEqual((await get(sqlite.url, `/v1/devices/${gw.deviceId}/availability${range}`)).json);
    expect(avFleet).toMatchObject({ heartbeats: 1, interval_s: 60 });
    expect((await get(replicas[1]!.url, `/v1/devices/${gw2.deviceId}/events?after=3`)).json).toEqual([expect.objectContaining({ event_id: 4, kind: 'agent.stop' })]);
    // Proofs of one element (wire-format.md §12.8) come from the same stored batch: the same answer.
    const proofPath = `/v1/devices/${gw.deviceId}/events/1/proof`;
    const proofFleet = await get(fleetUrl, proofPath);
    expect(proofFleet.status).toBe(200);
    expect(proofFleet.json).toEqual((await get(sqlite.url, proofPath)).json);
    expect((await get(fleetUrl, `/v1/devices/${gw.deviceId}/readings/99/proof`)).status).toBe(404);
    const flags = await db.query('SELECT flags FROM readings WHERE device = $1', [gw.deviceId]);
    expect(flags.rows).toEqual([{ flags: 1 }]);
  });

  it('with --sensor-keys refuses an attestation under a key not registered, as the SQLite receiver does, and counts attested readings', async () => {
    const gw = Identity.generate();
    const board = Identity.generate();
    const uid = Uint8Array.from([0x51, 0x4d, 0, 0, 0, 0, 0, 7]);
    const registryFile = join(tempDir('fleet-sensor-keys'), 'keys.json');
    writeFileSync(registryFile, JSON.stringify({ [gw.deviceId]: { [Buffer.from(uid).toString('hex')]: Buffer.from(board.publicKey).toString('hex') } }));
    const strict = await startReplica(fleet, 'strict', key.file, ['--sensor-keys', registryFile]);
    const twin = await startReceiver({ host: '127.0.0.1', port: 0, dataDir: tempDir('fleet-sqlite-keys'), logger: createLogger('silent'), ratePerS: 0, sensorKeys: SensorKeyRegistry.load(registryFile) });
    try {
      const attested = (first: number, values: number[], signer: Identity) => {
        const readings = values.map((v, k) => ({ id: first + k, boot: 1, sensor: 't', ts: 1_763_000_000_000 + first + k, timeSource: 'gateway-synced', value: v, source: 'serial', seq: first + k }) as StoredReading);
        const msg = encodeAttestationMessage({ uid, session: 1, sensor: 0, firstSeq: first, lastSeq: first + values.length - 1, digest: attestationDigest(readings.map((r) => ({ seq: r.seq!, values: [r.value] }))) });
        return { readings, attestations: [{ k: signer.publicKey, msg, sig: signer.sign(msg), r: readings.map((r) => r.id) }] };
      };
      const b1 = buildBatchV3(gw, { seq: 1, prevHash: ZERO_HASH, bootCounter: 1, clockSynced: true, createdMs: 1_763_000_000_100 }, attested(1, [1, 2, 3], board));
      const b2 = buildBatchV3(gw, { seq: 2, prevHash: b1.hash, bootCounter: 1, clockSynced: true, createdMs: 1_763_000_000_200 }, attested(4, [4, 99, 6], Identity.generate()));
      const before = (await get(strict.url, '/v1/stats')).json as Record<string, number>;
      for (const url of [strict.url, twin.url]) {
        expect((await post(url, b1.envelope)).status, url).toBe(200);
        const refused = await post(url, b2.envelope);
        expect(refused.status, url).toBe(403);
        expect(refused.json).toMatchObject({ reason: 'unknown-sensor-key', device: gw.deviceId, seq: 2, hash: hex(b2.hash) });
      }
      const after = (await get(strict.url, '/v1/stats')).json as Record<string, number>;
      expect(after.attested_readings! - before.attested_readings!).toBe(3);
      expect(after.refused_attestations! - before.refused_attestations!).toBe(1);
      expect((await get(twin.url, '/v1/stats')).json).toMatchObject({ readings: 3, attested_readings: 3, unattested_readings: 0, refused_attestations: 1 });
      // A replica without the flag checks no origin (§12.7): the same batch goes in.
      expect((await post(replicas[0]!.url, b2.envelope)).status).toBe(200);
    } finally {
      await twin.close();
      await strict.stop();
    }
  }, 120_000);

  it('never lets two replicas both accept conflicting batches', async () => {
    const pairs = Array.from({ length: 30 }, () => {
      const gw = Identity.generate();
      return { gw, a: chain(gw, 1, 2, 0)[0]!, b: chain(gw, 1, 2, 0.25)[0]! };
    });
    const answers = await Promise.all(pairs.map(({ a, b }) => Promise.all([post(replicas[0]!.url, a.envelope), post(replicas[1]!.url, b.envelope)])));
    for (const [k, [ra, rb]] of answers.entries()) {
      const statuses = [ra.status, rb.status].sort();
      expect(statuses, `pair ${k}`).toEqual([200, 409]);
      const winner = ra.status === 200 ? pairs[k]!.a : pairs[k]!.b;
      const held = await db.query('SELECT hash FROM batches WHERE device = $1', [pairs[k]!.gw.deviceId]);
      expect(held.rows.map((r: { hash: Buffer }) => r.hash.toString('hex'))).toEqual([hex(winner.hash)]);
    }
  });

  it('answers a replay the stream has long forgotten with duplicate and the same receipt, from PostgreSQL', async () => {
    const gw = Identity.generate();
    const [b1] = chain(gw, 1) as [SignedBatch];
    const first = await post(replicas[0]!.url, b1.envelope);
    expect(first.json.status).toBe('accepted');
    // What days later means for the log: its copy is gone (max_age), far outside the de-dup window.
    const nc = await natsConnect({ servers: fleet.natsUrls.split(',') });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.purge(STREAM);
    expect((await jsm.streams.info(STREAM)).state.messages).toBe(0);
    const replay = await post(replicas[1]!.url, b1.envelope);
    expect(replay.json.status).toBe('duplicate');
    expect(replay.json.receipt).toBe(first.json.receipt);
    expect((await jsm.streams.info(STREAM)).state.messages).toBe(0); // answered without logging it again
    await nc.close();
  });

  it('stores a batch that reached the log but no replica stored (a replica killed between PubAck and commit)', async () => {
    const gw = Identity.generate();
    const [b1] = chain(gw, 1) as [SignedBatch];
    // What a replica leaves behind when it dies right after the PubAck: the envelope in the stream only.
    const log = await BatchLog.open({ servers: fleet.natsUrls.split(','), replicas: 3, maxAgeMs: 86_400_000, duplicateWindowMs: 120_000, name: 'test', logger: createLogger('silent') });
    await log.append(b1, gw.deviceId);
    await log.close();
    const row = await waitFor('the projector to store it', async () => (await db.query('SELECT r.receipt, r.via FROM receipts r WHERE device = $1 AND seq = 1', [gw.deviceId])).rows[0] as { receipt: Buffer; via: string } | undefined, 60_000, 200);
    expect(row.via).toBe('log');
    verifyReceipt(new Uint8Array(row.receipt), { receiverKey: key.identity.publicKey, device: gw.publicKey, seq: 1, batchHash: b1.hash });
    const resent = await post(replicas[1]!.url, b1.envelope); // the gateway, back, sends it again
    expect(resent.json.status).toBe('duplicate');
    expect(Buffer.from(resent.json.receipt as string, 'base64').equals(row.receipt)).toBe(true);
  });

  it('shares MQTT batches among replicas (shared subscription): each answered once, on the signer’s reply topic', async () => {
    const broker: Broker = await startMosquitto();
    const bridged = [await startReplica(fleet, 'm1', key.file, ['--mqtt-url', broker.url, '--log-level', 'debug']), await startReplica(fleet, 'm2', key.file, ['--mqtt-url', broker.url, '--log-level', 'debug'])];
    try {
      await Promise.all(bridged.map((r) => waitFor(`${r.name} subscribed`, () => /receiver subscribed to batches over MQTT/.test(r.output()), 30_000, 50)));
      const client = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
      const replies: Record<string, unknown>[] = [];
      client.on('message', (_t, payload) => replies.push(JSON.parse(payload.toString()) as Record<string, unknown>));
      await client.subscribeAsync('edge/+/receipts', { qos: 1 });
      const gateways = Array.from({ length: 8 }, () => Identity.generate());
      const batches = gateways.flatMap((gw) => chain(gw, 5).map((b) => ({ gw, b })));
      for (const { gw, b } of batches) await client.publishAsync(`edge/${gw.deviceId}/batches`, Buffer.from(b.envelope), { qos: 1 });
      await waitFor(`${batches.length} replies`, () => replies.length >= batches.length, 30_000, 50);
      expect(replies.every((r) => r.status === 'accepted')).toBe(true);
      expect(new Set(replies.map((r) => `${r.device} ${r.seq}`)).size).toBe(batches.length);
      const taken = bridged.map((r) => (r.output().match(/"via":"mqtt".*batch received|batch received.*"via":"mqtt"/g) ?? []).length);
      expect(taken.reduce((a, b) => a + b, 0)).toBe(batches.length);
      expect(Math.min(...taken)).toBeGreaterThan(0); // both replicas did part of the work
      await client.endAsync();
    } finally {
      await Promise.all(bridged.map((r) => r.stop()));
      await broker.stop();
    }
  });

  it('signs no receipt while the stream has no quorum (503, nothing stored), and takes the batch once it has', async () => {
    const gw = Identity.generate();
    const [b1] = chain(gw, 1) as [SignedBatch];
    fleet.ctl('kill', 'nats-2');
    fleet.ctl('kill', 'nats-3');
    try {
      const refused = await post(replicas[0]!.url, b1.envelope);
      expect(refused.status).toBe(503);
      expect(refused.json.reason).toBe('unavailable');
      expect(Number(refused.retryAfter)).toBeGreaterThan(0);
      expect((await db.query('SELECT 1 FROM batches WHERE device = $1', [gw.deviceId])).rowCount).toBe(0);
    } finally {
      fleet.ctl('start', 'nats-2', 'nats-3');
    }
    const ok = await waitFor('the batch taken once the quorum is back', async () => {
      const r = await post(replicas[0]!.url, b1.envelope);
      return r.status === 200 ? r : undefined;
    }, 60_000, 500);
    // While the quorum comes back, a publish can reach the stream after its PubAck wait ran out:
    // that try got a 503 and the gateway's retry finds the batch taken. Either answer carries the
    // one receipt; the batch is stored once.
    expect(['accepted', 'duplicate']).toContain(ok.json.status);
    verifyReceipt(new Uint8Array(Buffer.from(ok.json.receipt as string, 'base64')), { receiverKey: key.identity.publicKey, device: gw.publicKey, seq: 1, batchHash: b1.hash });
    const stored = await waitFor('the batch stored', async () => {
      const r = await db.query('SELECT count(*)::int AS n FROM batches WHERE device = $1', [gw.deviceId]);
      return (r.rows[0] as { n: number }).n > 0 ? (r.rows[0] as { n: number }).n : undefined;
    }, 60_000, 200);
    expect(stored).toBe(1);
  }, 180_000);
});
