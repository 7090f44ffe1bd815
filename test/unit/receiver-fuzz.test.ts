import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { buildBatch, ZERO_HASH, type SignedBatch } from '../../agent/identity/batch-format.js';
import { Identity } from '../../agent/identity/keys.js';
import { createBatchIntake } from '../../agent/receiver/batch-intake.js';
import { openReceiverDatabase } from '../../agent/receiver/receiver-schema.js';
import { ReceiverStore } from '../../agent/receiver/receiver-store.js';
import type { StoredReading } from '../../agent/types.js';
import { mutate, seeded } from '../helpers/envelope-mutator.js';
import { chainAnswer, oracle, STATUS_OF } from '../helpers/wire-oracle.js';

/**
 * The receiver's intake (the boundary that POST /v1/batches and the MQTT bridge share) against
 * structure-aware mutants of valid batches, each answer compared with what docs/wire-format.md
 * §6-§7 gives for it by an independent reading (test/helpers/wire-oracle.ts). Figures are printed
 * and recorded in docs/performance.md. FUZZ_SEED replays a run, FUZZ_CASES changes its size.
 */
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32));
const CASES = Number(process.env.FUZZ_CASES ?? 100_000);
/** Documented bound for this process (vitest worker + receiver store) during the run. */
const RSS_BOUND_MB = 400;

const T = 1_763_000_000_000;
const reading = (id: number, extra: Partial<StoredReading> = {}): StoredReading => ({ id, sensor: `pump${id % 3}/temp`, ts: T + id * 1000, timeSource: 'sensor', value: id * 1.25, source: 'mqtt', boot: 1, ...extra });

function bases(device: Identity): SignedBatch[] {
  const hdr = (seq: number, prev: Uint8Array, drops?: { s: string; n: number }[]) => ({ seq, prevHash: prev, bootCounter: 2, clockSynced: true, createdMs: T + seq * 60_000, ...(drops ? { drops } : {}) });
  const b1 = buildBatch(device, hdr(1, ZERO_HASH), [reading(1), reading(2, { unit: 'Cel', seq: 7 }), reading(3, { timeSource: 'gateway-unsynced', value: -0.1 }), reading(4, { sensor: 'é/\u{1F600}' })]);
  const mh = Uint8Array.from({ length: 32 }, (_, k) => k);
  const b2 = buildBatch(device, hdr(2, b1.hash), [reading(5), reading(6)], [
    { id: 1, key: 'pump1/temp', modelId: 'stream-ad', modelSha256: mh, windowStart: T, ts: T + 5000, readingId: 5, outputs: { error: 2.5 }, score: 0.5, value: 0.5, threshold: 0.9, alert: false, changed: false },
    { id: 2, key: 'engine', modelId: 'rul', modelSha256: mh, windowStart: T - 9000, ts: T + 6000, outputs: { rul: 40, lo: 1 }, value: 40, threshold: 30, alert: true, changed: true },
  ]);
  const b3 = buildBatch(device, hdr(3, b2.hash, [{ s: 'pump0/temp', n: 4 }, { s: 'pump2/temp', n: 1 }]), [reading(9)]);
  return [b1, b2, b3];
}

let peakRssMb = 0;
const sampleRss = () => (peakRssMb = Math.max(peakRssMb, process.memoryUsage().rss / 2 ** 20));

describe(`receiver fuzz (seed ${SEED})`, () => {
  // In memory where the machine has it: the fsync of each accepted batch is the receiver's, not what is fuzzed.
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'ea-fuzz-'));
  const store = new ReceiverStore(openReceiverDatabase(join(dir, 'receiver.db')));
  const intake = createBatchIntake(store, Identity.generate(), pino({ level: 'silent' }));
  afterAll(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`answers ${CASES} mutated envelopes each with the status the spec gives, without a crash`, async () => {
    console.log(`receiver fuzz: seed ${SEED} (replay with FUZZ_SEED=${SEED}), ${CASES} cases`);
    const rng = seeded(SEED);
    const device = Identity.fromSeed(Uint8Array.from({ length: 32 }, (_, k) => 0x51 + k));
    const base = bases(device);
    const held = new Map<string, { hash: string; prev: string }>();
    for (const b of base) {
      const expected = oracle(b.envelope);
      expect(expected.reason).toBeUndefined();
      expect((await intake(b.envelope, Date.now())).status).toBe(200);
      if (expected.reason === undefined) chainAnswer(held, expected.batch);
    }
    const byStatus = new Map<number, number>();
    const byKind = new Map<string, number>();
    const mismatches: string[] = [];
    let crashes = 0;
    const started = process.hrtime.bigint();
    for (let k = 0; k < CASES; k++) {
      const m = mutate(rng, base[k % base.length]!, device);
      const expected = oracle(m.envelope);
      const want = expected.reason === undefined ? chainAnswer(held, expected.batch) : { status: STATUS_OF[expected.reason]!, reason: expected.reason };
      let got: { status: number; reason?: string; kind?: string };
      try {
        const a = await intake(m.envelope, Date.now());
        got = { status: a.status, ...(a.kind === 'rejected' ? { reason: a.reply.reason } : { kind: a.reply.status }) };
      } catch (err) {
        crashes++;
        got = { status: 500, reason: `threw ${(err as Error).message}` };
      }
      byStatus.set(got.status, (byStatus.get(got.status) ?? 0) + 1);
      const kind = m.kind.split('+')[0]!;
      byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
      if (got.status !== want.status || got.reason !== want.reason || (want.kind && got.kind !== want.kind)) {
        if (mismatches.length < 5) mismatches.push(`case ${k} (${m.kind}): got ${JSON.stringify(got)}, the spec gives ${JSON.stringify(want)}; envelope ${Buffer.from(m.envelope).toString('hex').slice(0, Number(process.env.FUZZ_HEX ?? 400))}`);
        else mismatches.length++;
      }
      if (k % 2000 === 0) sampleRss();
    }
    sampleRss();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    console.log(
      `receiver fuzz: ${CASES} cases in ${seconds.toFixed(1)} s, crashes ${crashes}, mismatches ${mismatches.length}, peak RSS ${peakRssMb.toFixed(0)} MiB (bound ${RSS_BOUND_MB}); ` +
        `statuses ${JSON.stringify(Object.fromEntries([...byStatus].sort()))}; kinds ${JSON.stringify(Object.fromEntries(byKind))}`,
    );
    expect(mismatches).toEqual([]);
    expect(crashes).toBe(0);
    expect(peakRssMb).toBeLessThan(RSS_BOUND_MB);
    // The mutants reach every answer of §7, not just the first checks.
    expect([...byStatus.keys()].sort()).toEqual([200, 400, 403, 409, 422]);
  }, 30 * 60_000);
});
