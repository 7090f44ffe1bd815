import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { verifyAnyBatchEnvelope, type AnyBatch } from '../../agent/identity/batch-any.js';
import { toBatchReading } from '../../agent/identity/batch-format.js';
import { canonicalEncode } from '../../agent/identity/canonical.js';
import { Identity } from '../../agent/identity/keys.js';
import { leafHash, leafHashesInto, merkleRoot, merkleRootOfLeafHashes } from '../../agent/identity/merkle.js';
import { encodeReadingLeaves } from '../../agent/identity/reading-leaf.js';
import { batchEncoder } from '../../agent/pipeline/batch-encoder.js';
import { Batcher } from '../../agent/pipeline/batcher.js';
import { GroupCommitWriter } from '../../agent/pipeline/group-commit.js';
import { ReadingLeafCache } from '../../agent/pipeline/leaf-cache.js';
import { BatchStore } from '../../agent/store/batch-store.js';
import { openDatabase, type Db } from '../../agent/store/database.js';
import { ReadingStore, type Submission } from '../../agent/store/reading-store.js';
import { VerdictStore } from '../../agent/store/verdict-store.js';
import type { Reading, StoredReading } from '../../agent/types.js';
import { seededRandom, type Seeded } from '../helpers/seeded.js';
import { waitFor } from '../helpers/ports.js';

/**
 * A batch cut from the leaf cache (pipeline/leaf-cache.ts) must be the batch the store alone cuts:
 * two stores fed the same commits, one cut with the cache and one without, give the same envelopes.
 */
const device = Identity.fromSeed(Uint8Array.from({ length: 32 }, (_, k) => 0x30 + k));
const NOW = 1_764_000_100_000;

function twin() {
  const open = () => openDatabase(join(mkdtempSync(join(tmpdir(), 'ea-leaf-cache-')), 'edge-agent.db'));
  const plain = open();
  const cached = open();
  const stores = [plain, cached].map((db) => ({ db, readings: new ReadingStore(db, 3), batches: new BatchStore(db) }));
  const cache = new ReadingLeafCache();
  return {
    cache,
    plain,
    cached,
    /** Commits to both; `noteCache` false: as if the reading came before a restart (the cache never saw it). */
    commit(subs: Submission[], noteCache = true) {
      const stored: StoredReading[] = [];
      const a = stores[0]!.readings.commit(subs, NOW - 1000);
      const b = stores[1]!.readings.commit(subs, NOW - 1000, stored);
      expect(b).toEqual(a);
      if (noteCache) cache.note(stored);
    },
    both(sql: string) {
      for (const s of stores) s.db.prepare(sql).run();
    },
    /** Cuts from both and checks the envelopes are the same bytes; returns the cache's batch. */
    cut(max: number, extra: { format?: 3; sealTo?: Uint8Array } = {}): AnyBatch | null {
      const opts = { bootCounter: 3, clockSynced: true, now: NOW, ...extra };
      const a = stores[0]!.batches.cutBatch(max, batchEncoder(device, opts));
      const b = stores[1]!.batches.cutBatch(max, batchEncoder(device, opts, cache));
      if (a === null || b === null) {
        expect(b).toBe(a);
        return null;
      }
      expect(Buffer.from(b.envelope).equals(Buffer.from(a.envelope)), `batch ${a.body.seq}: same envelope bytes`).toBe(true);
      expect(b.hash).toEqual(a.hash);
      // The readings decoded from the leaves (read lazily) are the ones the store's cut put in its body.
      expect(b.body.r).toEqual(a.body.r);
      return b;
    },
  };
}

const TIME_SOURCES: Reading['timeSource'][] = ['sensor', 'gateway-synced', 'gateway-unsynced'];
const VALUES = [0, 1, -1, 0.5, 0.1, -2.75, 65504, 65505, 1e-7, 1e300, -1e-300, 2 ** 53, 2 ** 53 + 2, -(2 ** 40), 3.4028234663852886e38, 5.960464477539063e-8];

function randomReading(rnd: Seeded, k: number, flags: boolean): Reading {
  const r: Reading = {
    sensor: rnd.next() < 0.1 ? `ü/ñ/😀/${'x'.repeat(rnd.int(0, 240))}` : `site/s${rnd.int(0, 5)}`,
    // Distinct per reading: sensor-timed readings repeating (sensor, ts) are duplicates.
    ts: 1_764_000_000_000 + k * 7 + rnd.int(0, 6),
    timeSource: TIME_SOURCES[rnd.int(0, 2)]!,
    value: rnd.next() < 0.5 ? VALUES[rnd.int(0, VALUES.length - 1)]! : (rnd.next() - 0.5) * 10 ** rnd.int(-5, 12),
  };
  if (rnd.next() < 0.4) r.unit = rnd.next() < 0.5 ? 'Cel' : 'u'.repeat(32);
  if (rnd.next() < 0.4) r.seq = rnd.int(0, 2 ** 31);
  if (flags && rnd.next() < 0.3) r.flags = rnd.int(1, 1023);
  return r;
}

function randomSubmissions(rnd: Seeded, from: number, count: number, flags = false): Submission[] {
  const subs: Submission[] = [];
  for (let k = from; k < from + count; ) {
    const n = Math.min(rnd.int(1, 9), from + count - k);
    subs.push({ source: rnd.next() < 0.5 ? 'mqtt' : `coap-${'c'.repeat(rnd.int(0, 20))}`, readings: Array.from({ length: n }, (_, j) => randomReading(rnd, k + j, flags)) });
    k += n;
  }
  return subs;
}

function addVerdicts(db: Db, readingIds: number[]): void {
  new VerdictStore(db, 3).commit(
    readingIds.map((id) => ({
      key: 'site/s1',
      modelId: 'stream-ad',
      modelSha256: new Uint8Array(32).fill(9),
      windowStart: 1_764_000_000_000 + id,
      ts: 1_764_000_000_000 + id,
      readingId: id,
      outputs: { score: id / 7 },
      score: id / 7,
      value: 0.5,
      threshold: 0.9,
      alert: false,
      changed: false,
    })),
  );
}

describe('batch cut from the leaf cache', () => {
  it('gives the same envelopes as the cut from the store, for versions 1, 2 and 3 (seeded random readings)', () => {
    const rnd = seededRandom('leaf-cache twin');
    const t = twin();
    const versions = new Set<number>();
    // Version 1: plain readings.
    t.commit(randomSubmissions(rnd, 0, 300));
    for (let b = t.cut(rnd.int(20, 120)); b; b = t.cut(rnd.int(20, 120))) versions.add(b.version);
    // Version 2: verdicts, and drops under the budget.
    t.commit(randomSubmissions(rnd, 300, 200));
    for (const db of [t.plain, t.cached]) addVerdicts(db, [301, 302, 350]);
    t.commit([{ source: 'mqtt', readings: [], drops: [{ sensor: 'site/s9', n: 4 }] }]);
    for (let b = t.cut(80); b; b = t.cut(80)) versions.add(b.version);
    // Version 3: flagged readings, and batch.format 3.
    t.commit(randomSubmissions(rnd, 500, 200, true));
    for (let b = t.cut(70); b; b = t.cut(70)) versions.add(b.version);
    t.commit(randomSubmissions(rnd, 700, 100));
    for (let b = t.cut(60, { format: 3 }); b; b = t.cut(60, { format: 3 })) versions.add(b.version);
    expect([...versions].sort(), rnd.describe()).toEqual([1, 2, 3]);
    expect(t.cache.misses, rnd.describe()).toBe(0);
    expect(t.cache.hits).toBeGreaterThan(10);
    for (const db of [t.plain, t.cached]) expect(db.prepare('SELECT count(*) FROM readings WHERE batch_seq IS NULL').pluck().get()).toBe(0);
  });

  it('falls back to the store when a reading of the batch is not cached (a restart), with the same bytes', () => {
    const rnd = seededRandom('leaf-cache miss');
    const t = twin();
    t.commit(randomSubmissions(rnd, 0, 50), false); // committed before a restart: never seen by this cache
    t.commit(randomSubmissions(rnd, 50, 50));
    expect(t.cut(80)!.body.n).toBe(80); // readings 1-80: 1-50 are not cached
    expect(t.cache.misses).toBe(1);
    expect(t.cut(80)!.body.n).toBe(20); // 81-100: all cached
    expect(t.cache.hits).toBe(1);
  });

  it('skips cached readings the store no longer holds unbatched (dropped under the budget), and cuts the rest from the cache', () => {
    const rnd = seededRandom('leaf-cache skip');
    const t = twin();
    t.commit(randomSubmissions(rnd, 0, 60));
    t.both('DELETE FROM readings WHERE id IN (1, 2, 17, 30, 31, 32, 60)');
    const b = t.cut(100)!;
    expect(b.body.r.map((r) => r.i)).not.toContain(17);
    expect(b.body.n).toBe(53);
    expect([t.cache.hits, t.cache.misses]).toEqual([1, 0]);
  });

  it('does not use the cache for sealed batches (their leaves carry salts)', () => {
    const t = twin();
    t.commit(randomSubmissions(seededRandom('leaf-cache sealed'), 0, 10));
    const opts = { bootCounter: 3, clockSynced: true, now: NOW, sealTo: Identity.generate().publicKey };
    const b = new BatchStore(t.cached).cutBatch(100, batchEncoder(device, opts, t.cache))!;
    expect(verifyAnyBatchEnvelope(b.envelope).sealed).toBe(true);
    expect([t.cache.hits, t.cache.misses]).toEqual([0, 0]);
  });

  it('halves a batch past the size limits from the cache as the store does', () => {
    const t = twin();
    const long = (i: number) => `s${i % 20}/${'x'.repeat(250)}`;
    // 10,000 readings with the longest names and their verdicts pass version 3's 4 MiB data (batch-size-limits.test.ts).
    const readings = Array.from({ length: 10_000 }, (_, i) => ({ sensor: long(i), ts: 1_764_000_000_000 + i, timeSource: 'sensor' as const, value: i + 0.25, unit: 'u'.repeat(32), seq: i }));
    for (let k = 0; k < readings.length; k += 2500) t.commit([{ source: `src-${'y'.repeat(24)}`, readings: readings.slice(k, k + 2500) }]);
    for (const db of [t.plain, t.cached]) addVerdicts(db, Array.from({ length: 10_000 }, (_, i) => i + 1));
    const sizes: number[] = [];
    for (let b = t.cut(10_000, { format: 3 }); b; b = t.cut(10_000, { format: 3 })) sizes.push(b.body.n);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(10_000);
    expect(sizes.length).toBeGreaterThan(1);
    expect(t.cache.misses).toBe(0);
  });

  it('stays within its bounds, dropping the oldest readings first', () => {
    const cache = new ReadingLeafCache(100, 64 * 1024);
    const stored = (from: number, n: number): StoredReading[] =>
      Array.from({ length: n }, (_, k) => ({ id: from + k, sensor: 's', ts: from + k, timeSource: 'sensor' as const, value: k, source: 'mqtt', boot: 1 }));
    for (let c = 0; c < 20; c++) cache.note(stored(1 + 30 * c, 30));
    expect(cache.size().readings).toBeLessThanOrEqual(100);
    expect(cache.take([1, 2, 3])).toBeUndefined(); // the oldest are gone
    const newest = Array.from({ length: 30 }, (_, k) => 571 + k);
    expect(cache.take(newest)?.count).toBe(30);
    const bytes = new ReadingLeafCache(1000, 4096);
    for (let c = 0; c < 20; c++) bytes.note(stored(1 + 30 * c, 30));
    expect(bytes.size().bytes).toBeLessThanOrEqual(4096);
    // A low rate commits one reading at a time: the number of commits kept is bounded too.
    const chunks = new ReadingLeafCache(1000, 64 * 1024, 8);
    for (let c = 0; c < 20; c++) chunks.note(stored(1 + c, 1));
    expect(chunks.size().readings).toBe(8);
    expect(chunks.take([13, 14, 15, 16, 17, 18, 19, 20])?.count).toBe(8);
  });
});

describe('the batcher fed by the writer, wired as the agent wires them', () => {
  it('while commits keep coming, a batch due by age is cut right after a commit (not by the tick, in the middle of a group); when they stop, the tick cuts', { timeout: 30_000 }, async () => {
    const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'ea-leaf-cache-')), 'edge-agent.db'));
    const writer = new GroupCommitWriter(new ReadingStore(db, 1));
    // batch.max_age_ms 400: a tick every 100 ms; the commits below come back to back, far more often.
    // maxReadings far above what 400 ms of commits gather here, so every cut is one by age.
    const batcher = new Batcher(new BatchStore(db), device, { maxReadings: 1_000_000, maxAgeMs: 400, bootCounter: 1, clockSynced: () => true }, pino({ level: 'silent' }));
    let inCommit = false;
    const cuts: { afterCommit: boolean; readings: number }[] = [];
    batcher.onBatch((b) => cuts.push({ afterCommit: inCommit, readings: b.body.r.length }));
    writer.onCommittedReadings((readings) => batcher.noteCommittedReadings(readings));
    writer.onCommitted((n) => {
      inCommit = true;
      batcher.noteCommitted(n);
      inCommit = false;
    });
    batcher.start();
    let ts = 0;
    const started = performance.now();
    while (cuts.length < 2) {
      await writer.submit({ source: 'mqtt', readings: [{ sensor: 's', ts: ts++, timeSource: 'sensor', value: 1 }] });
      if (performance.now() - started > 20_000) throw new Error(`no two batches within 20 s of commits: ${JSON.stringify(cuts)}`);
    }
    expect(cuts.every((c) => c.afterCommit)).toBe(true);
    // No more commits: what is left is cut by the tick, once it has waited batch.max_age_ms.
    await writer.submit({ source: 'mqtt', readings: [{ sensor: 's', ts: ts++, timeSource: 'sensor', value: 1 }] });
    await waitFor('the tick to cut the last reading', () => db.prepare('SELECT count(*) FROM readings WHERE batch_seq IS NULL').pluck().get() === 0, 5000);
    expect(cuts.at(-1)!.afterCommit).toBe(false);
    expect(cuts.reduce((n, c) => n + c.readings, 0)).toBe(ts);
    batcher.stop();
  });

  it('cuts from the cache: the writer tells the readings before the count that makes a batch due', async () => {
    const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'ea-leaf-cache-')), 'edge-agent.db'));
    const writer = new GroupCommitWriter(new ReadingStore(db, 1));
    const batcher = new Batcher(new BatchStore(db), device, { maxReadings: 10, maxAgeMs: 60_000, bootCounter: 1, clockSynced: () => true }, pino({ level: 'silent' }));
    writer.onCommittedReadings((readings) => batcher.noteCommittedReadings(readings));
    writer.onCommitted((n) => batcher.noteCommitted(n));
    await Promise.all(Array.from({ length: 35 }, (_, i) => writer.submit({ source: 'mqtt', readings: [{ sensor: 's', ts: 1000 + i, timeSource: 'sensor', value: i }] })));
    await Promise.all(Array.from({ length: 20 }, (_, i) => writer.submit({ source: 'mqtt', readings: [{ sensor: 's', ts: 2000 + i, timeSource: 'sensor', value: i }] })));
    await new Promise(setImmediate); // the writer tells its listeners in the turn after the acknowledgements
    expect(db.prepare('SELECT count(*) FROM readings WHERE batch_seq IS NOT NULL').pluck().get()).toBe(50);
    expect(batcher.leafCacheStats()).toMatchObject({ hits: 5, misses: 0 });
    batcher.stop();
  });
});

describe('reading leaves and stored leaf hashes', () => {
  it('encodes each reading as canonicalEncode of its wire form (with f when flagged), seeded', () => {
    const rnd = seededRandom('reading leaves');
    const readings: StoredReading[] = Array.from({ length: 3000 }, (_, k) => ({ ...randomReading(rnd, k, true), id: k + 1, source: rnd.next() < 0.5 ? 'mqtt' : 'serial', boot: rnd.int(0, 70_000) }));
    const { bytes, ends } = encodeReadingLeaves(readings)!;
    readings.forEach((r, k) => {
      const wire: Record<string, unknown> = { ...toBatchReading(r) };
      if (r.flags) wire.f = r.flags;
      expect(Buffer.from(bytes.subarray(k === 0 ? 0 : ends[k - 1], ends[k])).equals(Buffer.from(canonicalEncode(wire))), `reading ${k}, ${rnd.describe()}`).toBe(true);
    });
  });

  it('gives the Merkle root of the leaves from their stored hashes, for every tree size up to 70', () => {
    for (let n = 0; n <= 70; n++) {
      const leaves = Array.from({ length: n }, (_, k) => Uint8Array.from({ length: 1 + (k % 13) }, (_, j) => (k * 31 + j) & 0xff));
      const ends = new Uint32Array(n);
      let at = 0;
      leaves.forEach((l, k) => (ends[k] = at += l.length));
      const hashes = new Uint8Array(32 * n);
      leafHashesInto(Buffer.concat(leaves), ends, hashes);
      leaves.forEach((l, k) => expect(hashes.subarray(32 * k, 32 * k + 32)).toEqual(leafHash(l)));
      expect(merkleRootOfLeafHashes(hashes, n), `${n} leaves`).toEqual(merkleRoot(leaves));
    }
  });
});
