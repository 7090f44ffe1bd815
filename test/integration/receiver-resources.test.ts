import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBatch, ZERO_HASH, type SignedBatch } from '../../agent/identity/batch-format.js';
import { canonicalEncode } from '../../agent/identity/canonical.js';
import { Identity } from '../../agent/identity/keys.js';
import type { StoredReading } from '../../agent/types.js';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import { mutate, seeded } from '../helpers/envelope-mutator.js';
import { freePort } from '../helpers/ports.js';
import { tempDir } from '../helpers/setup.js';
import { chainAnswer, oracle, STATUS_OF } from '../helpers/wire-oracle.js';

/**
 * `edge-agent receive` as its own process against the requests of issue 12: bodies built to
 * exhaust memory or time, a client that writes its whole oversized body before reading, and a
 * smaller fuzz run over real HTTP. Peak RSS is the receiver process's own (VmHWM).
 */
const RSS_BOUND_MB = 300;
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32));
const HTTP_CASES = Number(process.env.FUZZ_HTTP_CASES ?? 2000);

let receiver: LongRunning;
let base: string;
const peakRssMb = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${receiver.proc.pid}/status`, 'utf8'))![1]) / 1024;

beforeAll(async () => {
  const port = await freePort();
  receiver = cliBackground(['receive', '--listen', `127.0.0.1:${port}`, '--data-dir', tempDir('receiver'), '--rate-limit', '0', '--log-level', 'error']);
  await receiver.waitForOutput(/public key did:key:/);
  base = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  await receiver.stop();
});

const T = 1_763_000_000_000;
const readings = (n: number, from = 1): StoredReading[] => Array.from({ length: n }, (_, k) => ({ id: from + k, sensor: `s${k % 50}`, ts: T + k, timeSource: 'sensor', value: k / 7, source: 'mqtt', boot: 1 }));
const device = Identity.generate();
const validBatch = (seq: number, prev: Uint8Array, n = 3): SignedBatch => buildBatch(device, { seq, prevHash: prev, bootCounter: 1, clockSynced: true, createdMs: T }, readings(n, seq * 100_000));

/** POST /v1/batches on a connection of its own (no keep-alive race with the server's idle timeout between slow steps). */
function post(body: Uint8Array): Promise<{ status: number; json: Record<string, unknown>; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(`${base}/v1/batches`, { method: 'POST', agent: false, headers: { 'content-type': 'application/cbor', 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>, ms: performance.now() - started }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Batch 1's body with the encoded `r` array replaced by `array` (bytes of a CBOR array). */
function bodyWithR(array: Uint8Array, extra: Record<string, unknown> = {}): Uint8Array {
  const b = validBatch(1, ZERO_HASH, 1);
  const marker = Buffer.from(canonicalEncode({ ...b.body, ...extra, r: new Uint8Array(32).fill(0xee) }));
  const at = marker.indexOf(Buffer.from([0x61, 0x72, 0x58, 0x20, ...new Uint8Array(32).fill(0xee)]));
  return Buffer.concat([marker.subarray(0, at + 2), array, marker.subarray(at + 2 + 34)]);
}
const envelopeOf = (body: Uint8Array) => canonicalEncode({ body, sig: new Uint8Array(64) });
const arrayHeader = (n: number) => Buffer.from([0x9a, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);

describe('receiver resources: one request cannot kill it (issue 12, Found 1)', () => {
  it('answers 2,000,000 empty maps in `r` (2 MB, unsigned) with 400 at once, stays under its RSS bound, and takes the next valid batch', async () => {
    const body = bodyWithR(Buffer.concat([arrayHeader(2_000_000), Buffer.alloc(2_000_000, 0xa0)]));
    expect(body.length).toBeGreaterThan(2_000_000);
    const r = await post(envelopeOf(body));
    console.log(`2,000,000 empty maps (${body.length} bytes): ${r.status} in ${r.ms.toFixed(0)} ms; receiver peak RSS ${peakRssMb().toFixed(0)} MiB`);
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ reason: 'malformed', detail: expect.stringContaining('array of 2000000 at r, more than the limit of 10000') });
    // A deadline, not a speed target (the target, 1 s, is measured above and in docs/performance.md): before the fix it took 36 s and then died.
    expect(r.ms).toBeLessThan(10_000);
    expect(peakRssMb()).toBeLessThan(RSS_BOUND_MB);
    expect((await post(validBatch(1, ZERO_HASH).envelope)).status).toBe(200);
  });

  it('refuses 1,000,000 empty maps under an unknown key, 200,000 nested arrays and a 100,000-reading batch, each as malformed, and keeps its RSS bound', async () => {
    const cases: [string, Uint8Array, RegExp][] = [
      ['1,000,000 empty maps in one reading', bodyWithR(Buffer.concat([Buffer.from([0x81, 0xa1, 0x61, 0x78]), arrayHeader(1_000_000), Buffer.alloc(1_000_000, 0xa0)])), /array of 1000000 at r\.\*\.x, more than the limit of 16/],
      ['200,000 nested arrays', bodyWithR(Buffer.concat([Buffer.alloc(200_000, 0x81), Buffer.from([0x00])])), /nested deeper than 4/],
    ];
    const big = buildBatch(device, { seq: 9, prevHash: ZERO_HASH, bootCounter: 1, clockSynced: true, createdMs: T }, readings(100_000, 1_000_000));
    for (const [what, body, detail] of cases) {
      const r = await post(envelopeOf(body));
      console.log(`${what} (${body.length} bytes): ${r.status} in ${r.ms.toFixed(0)} ms; receiver peak RSS ${peakRssMb().toFixed(0)} MiB`);
      expect(r.json).toMatchObject({ reason: 'malformed', detail: expect.stringMatching(detail) });
    }
    const r = await post(big.envelope);
    console.log(`valid 100,000-reading batch (${big.envelope.length} bytes): ${r.status} in ${r.ms.toFixed(0)} ms; receiver peak RSS ${peakRssMb().toFixed(0)} MiB`);
    expect(r).toMatchObject({ status: 400, json: { detail: expect.stringContaining('more than the limit of 10000') } });
    expect(peakRssMb()).toBeLessThan(RSS_BOUND_MB);
  });

  it('takes a batch at the limit (10,000 readings) and stays under its RSS bound', async () => {
    const b = validBatch(2, validBatch(1, ZERO_HASH).hash, 10_000);
    const r = await post(b.envelope);
    console.log(`valid 10,000-reading batch (${b.envelope.length} bytes): ${r.status} in ${r.ms.toFixed(0)} ms; receiver peak RSS ${peakRssMb().toFixed(0)} MiB`);
    expect(r.json).toMatchObject({ status: 'accepted', seq: 2 });
    expect(peakRssMb()).toBeLessThan(RSS_BOUND_MB);
  });
});

describe('413 after the body is read (issue 12, Found 6)', () => {
  it('a client that writes its whole 32 MiB body before reading gets the 413, not EPIPE, and the receiver goes on', async () => {
    // Larger than the loopback socket buffers, so that a receiver that answers and closes early breaks the write.
    const body = Buffer.alloc(32 * 1024 * 1024, 0x41);
    const answer = await new Promise<{ status?: number; text?: string; errors: string[]; written: boolean }>((resolve) => {
      const seen = { errors: [] as string[], written: false, status: undefined as number | undefined, text: undefined as string | undefined, ended: false };
      const done = () => {
        if (seen.ended && (seen.written || seen.errors.length > 0)) resolve(seen);
      };
      const req = request(`${base}/v1/batches`, { method: 'POST', agent: false, headers: { 'content-type': 'application/cbor', 'content-length': body.length } }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => {
          Object.assign(seen, { status: res.statusCode!, text, ended: true });
          done();
        });
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        seen.errors.push(err.code ?? err.message);
        seen.ended = true;
        done();
      });
      req.on('finish', () => {
        seen.written = true;
        done();
      });
      // Written in one go, before any answer is looked at: what an HTTP/1.1 client without Expect: 100-continue does.
      req.end(body);
    });
    expect(answer).toMatchObject({ status: 413, errors: [], written: true });
    expect(JSON.parse(answer.text!)).toMatchObject({ reason: 'too-large' });
    expect((await post(validBatch(3, validBatch(2, validBatch(1, ZERO_HASH).hash, 10_000).hash).envelope)).status).toBe(200);
  });
});

describe(`receiver fuzz over real HTTP (seed ${SEED})`, () => {
  it(`answers ${HTTP_CASES} mutated envelopes with the status the spec gives, without a crash`, async () => {
    const rng = seeded(SEED);
    const fuzzDevice = Identity.fromSeed(Uint8Array.from({ length: 32 }, (_, k) => 0x91 + k));
    const b1 = buildBatch(fuzzDevice, { seq: 1, prevHash: ZERO_HASH, bootCounter: 1, clockSynced: true, createdMs: T }, readings(4));
    const b2 = buildBatch(fuzzDevice, { seq: 2, prevHash: b1.hash, bootCounter: 1, clockSynced: false, createdMs: T, drops: [{ s: 'x', n: 2 }] }, readings(2, 10));
    const held = new Map<string, { hash: string; prev: string }>();
    for (const b of [b1, b2]) {
      expect((await post(b.envelope)).status).toBe(200);
      const o = oracle(b.envelope);
      if (o.reason === undefined) chainAnswer(held, o.batch);
    }
    const mismatches: string[] = [];
    const byStatus: Record<number, number> = {};
    for (let k = 0; k < HTTP_CASES; k++) {
      const m = mutate(rng, k % 2 ? b2 : b1, fuzzDevice);
      const o = oracle(m.envelope);
      const want = o.reason === undefined ? chainAnswer(held, o.batch) : { status: STATUS_OF[o.reason]!, reason: o.reason };
      const got = await post(m.envelope);
      byStatus[got.status] = (byStatus[got.status] ?? 0) + 1;
      if (got.status !== want.status || (want.reason && got.json.reason !== want.reason)) {
        if (mismatches.length < 5) mismatches.push(`case ${k} (${m.kind}): got ${got.status} ${String(got.json.reason)}, the spec gives ${JSON.stringify(want)}`);
      }
    }
    console.log(`receiver fuzz over HTTP: seed ${SEED}, ${HTTP_CASES} cases, statuses ${JSON.stringify(byStatus)}, receiver peak RSS ${peakRssMb().toFixed(0)} MiB, process alive: ${receiver.proc.exitCode === null}`);
    expect(mismatches).toEqual([]);
    expect(byStatus[500]).toBeUndefined();
    expect(receiver.proc.exitCode).toBeNull();
  });
});

describe('the identity-point forgery (issue 12, Found 2)', () => {
  it('is refused by the receiver (403) and by `edge-agent verify` (exit 1, bad-signature)', async () => {
    const V = JSON.parse(readFileSync(join(import.meta.dirname, '../../docs/wire-format-vectors.json'), 'utf8')) as { negative: { name: string; envelope: string }[] };
    const forged = Buffer.from(V.negative.find((n) => n.name === 'dev-identity-point-forgery')!.envelope, 'hex');
    const r = await post(forged);
    expect(r).toMatchObject({ status: 403, json: { reason: 'bad-signature', detail: expect.stringContaining('small order') } });
    const file = join(tempDir('forged'), 'forged.cbor');
    writeFileSync(file, forged);
    const v = cli(['verify', file]);
    expect(v.code).toBe(1);
    expect(v.stderr).toContain(`INVALID batch file ${file}: bad-signature: device key dev is a point of small order (libsodium blocklist): it would verify forged signatures`);
  });
});
