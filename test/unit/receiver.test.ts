import Database from 'better-sqlite3';
import { decode } from 'cborg';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildBatch, hex, ZERO_HASH, type SignedBatch } from '../../agent/identity/batch-format.js';
import { canonicalEncode } from '../../agent/identity/canonical.js';
import { batchCidText } from '../../agent/identity/cid.js';
import { Identity } from '../../agent/identity/keys.js';
import { sha256 } from '../../agent/identity/merkle.js';
import { verifyReceipt } from '../../agent/identity/receipt.js';
import { startReceiver, type RunningReceiver } from '../../agent/receiver/server.js';
import type { StoredReading } from '../../agent/types.js';

const tempDir = () => mkdtempSync(join(tmpdir(), 'ea-receiver-'));
const running: RunningReceiver[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

async function start(dataDir = tempDir(), maxBodyBytes?: number) {
  const logs: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const receiver = await startReceiver({ host: '127.0.0.1', port: 0, dataDir, logger, ...(maxBodyBytes === undefined ? {} : { maxBodyBytes }) });
  running.push(receiver);
  const get = async (path: string) => {
    const res = await fetch(`${receiver.url}${path}`);
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const post = async (body: Uint8Array | string, contentType = 'application/cbor') => {
    const res = await fetch(`${receiver.url}/v1/batches`, { method: 'POST', headers: { 'content-type': contentType }, body });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const stats = async () => (await get('/v1/stats')).json;
  const warnings = () => logs.filter((l) => l.level === 40);
  return { receiver, dataDir, get, post, stats, warnings };
}

const reading = (id: number, value = id * 1.5): StoredReading => ({ id, sensor: `s${id % 3}`, ts: 1_763_000_000_000 + id, timeSource: 'sensor', value, source: 'mqtt', boot: 1 });
const readings = (from: number, count: number) => Array.from({ length: count }, (_, k) => reading(from + k));

function makeBatch(device: Identity, seq: number, prev: Uint8Array, rs: StoredReading[]): SignedBatch {
  return buildBatch(device, { seq, prevHash: prev, bootCounter: 1, clockSynced: true, createdMs: 1_763_000_100_000 }, rs);
}

/** A chain of `n` batches of 3 readings each, linked by prev. */
function chain(device: Identity, n: number): SignedBatch[] {
  const out: SignedBatch[] = [];
  for (let seq = 1; seq <= n; seq++) out.push(makeBatch(device, seq, out[seq - 2]?.hash ?? ZERO_HASH, readings(seq * 10, 3)));
  return out;
}

type Body = Record<string, unknown> & { r: Record<string, unknown>[] };
const openEnvelope = (envelope: Uint8Array) => decode(envelope) as { body: Uint8Array; sig: Uint8Array };

/** Decodes a batch, lets `edit` change its body, re-encodes canonically; re-signs with `signer` if given. */
function rewrite(batch: SignedBatch, edit: (body: Body) => void, signer?: Identity): Uint8Array {
  const env = openEnvelope(batch.envelope);
  const body = decode(env.body) as Body;
  edit(body);
  const bodyBytes = canonicalEncode(body);
  return canonicalEncode({ body: bodyBytes, sig: signer ? signer.sign(bodyBytes) : env.sig });
}

describe('reference receiver', () => {
  it('accepts a batch and answers with a receipt signed by its key over {dev, seq, hash, at}', async () => {
    const r = await start();
    const device = Identity.generate();
    const [b1] = chain(device, 1);
    const before = Date.now();
    const res = await r.post(b1!.envelope);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ status: 'accepted', device: device.deviceId, seq: 1, hash: hex(b1!.hash) });
    const receipt = verifyReceipt(new Uint8Array(Buffer.from(res.json.receipt as string, 'base64')), {
      receiverKey: r.receiver.publicKey,
      device: device.publicKey,
      seq: 1,
      batchHash: b1!.hash,
    });
    expect(receipt.at).toBeGreaterThanOrEqual(before);
    expect(receipt.at).toBeLessThanOrEqual(Date.now());

    const did = (await r.get('/v1/receiver')).json.public_key as string;
    expect(did).toMatch(/^did:key:z/);
    expect(readFileSync(join(r.dataDir, 'receiver.pub'), 'utf8').trim()).toBe(did);
    expect(statSync(join(r.dataDir, 'receiver.key')).mode & 0o777).toBe(0o600);
    const list = await r.get(`/v1/devices/${device.deviceId}/batches`);
    expect(list.status).toBe(200);
    expect(list.json).toEqual([{ seq: 1, hash: hex(b1!.hash), cid: batchCidText(b1!.envelope), version: 1, sealed: false, received_at: receipt.at, readings: 3 }]);
    expect((await r.get(`/v1/devices/${Identity.generate().deviceId}/batches`)).status).toBe(404);
  });

  it('answers a re-sent batch as a duplicate with the byte-identical receipt and changes no numbers', async () => {
    const r = await start();
    const [b1] = chain(Identity.generate(), 1);
    const first = await r.post(b1!.envelope);
    const statsBefore = await r.stats();
    const again = await r.post(b1!.envelope, 'application/octet-stream');
    expect(again.status).toBe(200);
    expect(again.json.status).toBe('duplicate');
    expect(again.json.receipt).toBe(first.json.receipt);
    expect(await r.stats()).toEqual(statsBefore);
  });

  it('rejects tampering and forgery by signature, before trusting anything the batch claims', async () => {
    const r = await start();
    const victim = Identity.generate();
    const [b1] = chain(victim, 1);

    const tampered = rewrite(b1!, (body) => (body.r[0]!.v = 99.5));
    expect(await r.post(tampered)).toMatchObject({ status: 403, json: { status: 'rejected', reason: 'bad-signature' } });

    const attacker = Identity.generate();
    const own = makeBatch(attacker, 1, ZERO_HASH, readings(1, 2));
    const forged = rewrite(own, (body) => (body.dev = victim.publicKey), attacker);
    expect(await r.post(forged)).toMatchObject({ status: 403, json: { reason: 'bad-signature' } });

    // Re-signed by the device itself, but the Merkle root no longer matches the readings.
    const staleRoot = rewrite(b1!, (body) => (body.r[1]!.v = -1), victim);
    expect(await r.post(staleRoot)).toMatchObject({ status: 422, json: { reason: 'bad-merkle-root' } });

    expect(await r.stats()).toMatchObject({ devices: 0, batches: 0, readings: 0, rejected: 3 });
    expect((await r.get(`/v1/devices/${victim.deviceId}/batches`)).status).toBe(404);
    expect(r.warnings().map((l) => l.reason)).toEqual(['bad-signature', 'bad-signature', 'bad-merkle-root']);
    expect(r.warnings()[0]).toMatchObject({ claimed_device: victim.deviceId, claimed_seq: 1 });
    expect(r.warnings()[0]).not.toHaveProperty('device');
  });

  it('refuses a broken chain link and a second batch under one seq (a fork), and logs each once', async () => {
    const r = await start();
    const device = Identity.generate();
    const [b1, b2] = chain(device, 2);
    expect((await r.post(b1!.envelope)).status).toBe(200);

    const wrongPrev = makeBatch(device, 2, sha256(Uint8Array.of(1)), readings(20, 3));
    const broken = await r.post(wrongPrev.envelope);
    expect(broken).toMatchObject({ status: 409, json: { status: 'rejected', reason: 'chain-broken' } });
    expect(broken.json.detail).toMatch(/prev/);

    const fork = makeBatch(device, 1, ZERO_HASH, readings(1, 2));
    expect(await r.post(fork.envelope)).toMatchObject({ status: 409, json: { reason: 'seq-conflict' } });

    const other = Identity.generate();
    const badGenesis = makeBatch(other, 1, b1!.hash, readings(1, 1));
    expect(await r.post(badGenesis.envelope)).toMatchObject({ status: 409, json: { reason: 'chain-broken' } });

    expect((await r.post(b2!.envelope)).status).toBe(200);
    expect(await r.stats()).toMatchObject({ devices: 1, batches: 2, readings: 6, rejected: 3, gaps: 0, rejected_by_reason: { 'chain-broken': 2, 'seq-conflict': 1 } });
    expect(r.warnings()).toHaveLength(3);
    expect(r.warnings()[0]).toMatchObject({ device: device.deviceId, seq: 2, reason: 'chain-broken' });
    expect(r.warnings()[1]).toMatchObject({ device: device.deviceId, seq: 1, reason: 'seq-conflict' });
  });

  it('accepts a batch after a gap, counts the gap, and closes it when the missing batch arrives', async () => {
    const r = await start();
    const device = Identity.generate();
    const [b1, b2, b3, b4, b5] = chain(device, 5);
    for (const b of [b1, b3, b5]) expect((await r.post(b!.envelope)).status).toBe(200);
    expect(await r.stats()).toMatchObject({ batches: 3, gaps: 2 });

    // seq 4 must link to the held seq 3 and be linked to by the held seq 5.
    const notLinkedBy5 = makeBatch(device, 4, b3!.hash, readings(99, 1));
    expect(await r.post(notLinkedBy5.envelope)).toMatchObject({ status: 409, json: { reason: 'chain-broken' } });
    expect(r.warnings()[0]?.detail).toMatch(/held seq 5/);

    expect((await r.post(b2!.envelope)).status).toBe(200);
    expect((await r.post(b4!.envelope)).status).toBe(200);
    expect(await r.stats()).toMatchObject({ devices: 1, batches: 5, readings: 15, gaps: 0, rejected: 1 });
    const seqs = ((await r.get(`/v1/devices/${device.deviceId}/batches`)).json as unknown as { seq: number }[]).map((b) => b.seq);
    expect(seqs).toEqual([1, 2, 3, 4, 5]);
  });

  it('counts gaps per device and readings once when a reading id repeats in a later batch', async () => {
    const r = await start();
    const a = Identity.generate();
    const b = Identity.generate();
    const a1 = makeBatch(a, 1, ZERO_HASH, readings(1, 3));
    const a2 = makeBatch(a, 2, a1.hash, readings(3, 3)); // reading 3 again
    const b4 = makeBatch(b, 4, sha256(Uint8Array.of(4)), readings(1, 2));
    for (const x of [a1, a2, b4]) expect((await r.post(x.envelope)).status).toBe(200);
    expect(await r.stats()).toEqual({ devices: 2, batches: 3, readings: 5 + 2, verdicts: 0, alerts_raised: 0, rejected: 0, gaps: 3, rejected_by_reason: {}, dropped: 0, dropped_by_sensor: {}, attested_readings: 0, unattested_readings: 7, refused_attestations: 0, rate_limited: 0 });
  });

  it('answers garbage, wrong content types, oversize bodies and unknown routes with 4xx, and keeps serving', async () => {
    const r = await start(tempDir(), 4096);
    const malformed = [new TextEncoder().encode('not cbor at all'), new Uint8Array(0), canonicalEncode({ body: new Uint8Array(3), sig: new Uint8Array(64) })];
    for (const body of malformed) expect(await r.post(body)).toMatchObject({ status: 400, json: { status: 'rejected', reason: 'malformed' } });
    expect(await r.post('{"seq":1}', 'application/json')).toMatchObject({ status: 415, json: { reason: 'unsupported-media-type' } });
    expect((await r.post(new Uint8Array(10), 'text/plain; charset=utf-8')).status).toBe(415);

    // Declared length over the limit, and a chunked stream that only grows past it.
    expect(await r.post(new Uint8Array(1024 * 1024))).toMatchObject({ status: 413, json: { reason: 'too-large' } });
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 8; i++) c.enqueue(new Uint8Array(1024));
        c.close();
      },
    });
    const chunked = await fetch(`${r.receiver.url}/v1/batches`, { method: 'POST', headers: { 'content-type': 'application/cbor' }, body: stream, duplex: 'half' } as RequestInit);
    expect(chunked.status).toBe(413);
    await chunked.body?.cancel();

    expect((await r.get('/nope')).status).toBe(404);
    expect((await r.get('/v1/batches')).status).toBe(405);
    expect((await fetch(`${r.receiver.url}/v1/stats`, { method: 'DELETE' })).status).toBe(405);
    expect((await r.get('/v1/devices/not-a-did/batches')).status).toBe(404);

    const [b1] = chain(Identity.generate(), 1);
    expect((await r.post(b1!.envelope)).status).toBe(200);
    expect(await r.stats()).toEqual({
      devices: 1,
      batches: 1,
      readings: 3,
      verdicts: 0,
      alerts_raised: 0,
      rejected: 7,
      gaps: 0,
      rejected_by_reason: { 'malformed': 3, 'too-large': 2, 'unsupported-media-type': 2 },
      dropped: 0,
      dropped_by_sensor: {},
      attested_readings: 0,
      unattested_readings: 3,
      refused_attestations: 0,
      rate_limited: 0,
    });
  });

  it('keeps its key, batches and counters across a restart on the same data dir', async () => {
    const dir = tempDir();
    const first = await start(dir);
    const device = Identity.generate();
    const [b1, b2] = chain(device, 2);
    const accepted = await first.post(b1!.envelope);
    await first.post(new Uint8Array([0xff]));
    await first.post(makeBatch(device, 1, ZERO_HASH, readings(7, 1)).envelope);
    const statsBefore = await first.stats();
    await first.receiver.close();

    const second = await start(dir);
    expect(Buffer.from(second.receiver.publicKey).equals(Buffer.from(first.receiver.publicKey))).toBe(true);
    expect(await second.stats()).toEqual(statsBefore);
    expect(statsBefore).toMatchObject({ batches: 1, rejected: 2, rejected_by_reason: { 'malformed': 1, 'seq-conflict': 1 } });
    expect((await second.post(b1!.envelope)).json).toMatchObject({ status: 'duplicate', receipt: accepted.json.receipt });
    expect((await second.post(b2!.envelope)).json.status).toBe('accepted');
  });

  it('answers 500 and logs it when a handler fails, and keeps serving', async () => {
    const r = await start();
    const db = new Database(join(r.dataDir, 'receiver.db'));
    db.exec('DROP TABLE readings');
    db.close();
    const [b1] = chain(Identity.generate(), 1);
    expect(await r.post(b1!.envelope)).toMatchObject({ status: 500, json: { status: 'error', reason: 'internal' } });
    expect((await r.get('/v1/receiver')).status).toBe(200);
  });

  it('refuses a database written by a newer receiver', async () => {
    const dir = tempDir();
    const r = await start(dir);
    await r.receiver.close();
    const db = new Database(join(dir, 'receiver.db'));
    db.pragma('user_version = 99');
    db.close();
    await expect(startReceiver({ host: '127.0.0.1', port: 0, dataDir: dir, logger: pino({ level: 'silent' }) })).rejects.toMatchObject({
      code: 'STORE_NEWER_SCHEMA',
      message: expect.stringMatching(/schema version 99, newer/),
    });
  });
});

describe('proofs served by the receiver (docs/wire-format.md §12.8)', () => {
  it('a reading of a version-1 batch gets 422 proof-needs-version-3 naming batch.format: 3; an unknown one 404', async () => {
    const r = await start();
    const device = Identity.generate();
    const [b1] = chain(device, 1);
    expect((await r.post(b1!.envelope)).status).toBe(200);
    const refused = await r.get(`/v1/devices/${device.deviceId}/readings/10/proof`);
    expect(refused.status).toBe(422);
    expect(refused.json.reason).toBe('proof-needs-version-3');
    expect(refused.json.detail).toMatch(/batch\.format: 3/);
    expect((await r.get(`/v1/devices/${device.deviceId}/readings/99/proof`)).status).toBe(404);
    expect((await r.get(`/v1/devices/${device.deviceId}/verdicts/1/proof`)).status).toBe(404);
  });
});
