/**
 * Flash wear (issue 13) as the store's own behaviour, measured in WAL frames of a real SQLite file:
 * a delivery mark does not rewrite the batch's envelope, and writes that ride in a reading commit
 * (store/commit-riders.ts) add no transaction of their own.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/ports.js';
import { verifyStoreChain } from '../../agent/identity/chain-verify.js';
import { Identity } from '../../agent/identity/keys.js';
import { batchEncoder } from '../../agent/pipeline/batch-encoder.js';
import { BatchStore } from '../../agent/store/batch-store.js';
import { openDatabase, type Db } from '../../agent/store/database.js';
import { bindDevice, getMeta, setMeta } from '../../agent/store/meta.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../agent/store/migrations.js';
import { CommitRiders } from '../../agent/store/commit-riders.js';
import { ReadingStore } from '../../agent/store/reading-store.js';
import { pruneDelivered } from '../../agent/store/retention.js';
import type { Reading } from '../../agent/types.js';

const dbPath = () => join(mkdtempSync(join(tmpdir(), 'ea-wear-')), 'edge-agent.db');
const reading = (sensor: string, ts: number, value: number): Reading => ({ sensor, ts, timeSource: 'sensor', value });

/** WAL frames written since the last `restartWal` (a frame is one page and its 24-byte header, after the 32-byte WAL header). */
function walFrames(db: Db, path: string): number {
  const page = db.pragma('page_size', { simple: true }) as number;
  const size = statSync(`${path}-wal`).size;
  return size === 0 ? 0 : (size - 32) / (page + 24);
}
function restartWal(db: Db): void {
  db.pragma('wal_checkpoint(TRUNCATE)');
}

/** Transactions in the WAL since `restartWal`: a transaction's last frame carries the database size (frame header bytes 4-7), the others 0. */
function commitFrames(path: string, db: Db): number {
  const page = db.pragma('page_size', { simple: true }) as number;
  const wal = readFileSync(`${path}-wal`);
  let commits = 0;
  for (let at = 32; at + 24 + page <= wal.length; at += 24 + page) if (wal.readUInt32BE(at + 4) !== 0) commits++;
  return commits;
}

describe('flash wear of the store', () => {
  it('marks a batch delivered without rewriting its envelope (the envelope lives in its own table)', () => {
    const path = dbPath();
    const db = openDatabase(path);
    const id = Identity.generate();
    bindDevice(db, id.deviceId, 'x');
    new ReadingStore(db, 1).commit([{ source: 'mqtt', readings: Array.from({ length: 200 }, (_, i) => reading(`s${i % 20}`, 1000 + i, i + 0.5)) }]);
    const batches = new BatchStore(db);
    const batch = batches.cutBatch(200, batchEncoder(id, { bootCounter: 1, clockSynced: true, now: 5 }))!;
    const page = db.pragma('page_size', { simple: true }) as number;
    const envelopePages = Math.ceil(batch.envelope.length / page);
    expect(envelopePages).toBeGreaterThanOrEqual(5);
    restartWal(db);
    batches.markDelivered(1, 1000);
    // The batches row, its pending index, the uplink's meta row, page 1: not the envelope's overflow pages.
    expect(walFrames(db, path)).toBeLessThan(envelopePages);
    restartWal(db);
    batches.markAttemptFailed(1, 'receiver down');
    expect(walFrames(db, path)).toBeLessThan(envelopePages);
    // Every reader still gets the envelope with the row; the chain verifies.
    expect(Buffer.from(batches.get(1)!.envelope).equals(Buffer.from(batch.envelope))).toBe(true);
    expect(batches.all().map((b) => [b.seq, b.state, b.envelope.length])).toEqual([[1, 'delivered', batch.envelope.length]]);
    expect(verifyStoreChain(db).problems).toEqual([]);
  });

  it('moves the envelopes of a store made before migration 14 into their table, and retention deletes both', () => {
    const path = dbPath();
    const old = new Database(path);
    const before = MIGRATIONS.findIndex((m) => m.includes('CREATE TABLE batch_envelopes'));
    for (let v = 0; v < before; v++) old.exec(MIGRATIONS[v]!);
    old.pragma(`user_version = ${before}`);
    const insert = old.prepare(
      `INSERT INTO batches (seq, hash, prev_hash, envelope, reading_count, first_reading_id, last_reading_id, t0, t1, created_at, state, delivered_at)
       VALUES (?, ?, ?, ?, 0, 0, 0, 1, 1, 1, ?, ?)`,
    );
    insert.run(1, Buffer.alloc(32, 1), Buffer.alloc(32), Buffer.alloc(3000, 0xa1), 'delivered', 10);
    insert.run(2, Buffer.alloc(32, 2), Buffer.alloc(32, 1), Buffer.alloc(3000, 0xa2), 'delivered', 10);
    insert.run(3, Buffer.alloc(32, 3), Buffer.alloc(32, 2), Buffer.alloc(2000, 0xa3), 'pending', null);
    old.close();

    const db = openDatabase(path);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    const batches = new BatchStore(db);
    expect(batches.all().map((b) => [b.seq, b.state, b.envelope.length, b.envelope[0]])).toEqual([
      [1, 'delivered', 3000, 0xa1],
      [2, 'delivered', 3000, 0xa2],
      [3, 'pending', 2000, 0xa3],
    ]);
    expect(batches.nextPending()?.seq).toBe(3);
    expect(batches.pendingEnvelopeBytes()).toBe(2000);
    expect(pruneDelivered(db, 0, 1000)).toEqual({ batches: 2, readings: 0 });
    expect(db.prepare('SELECT seq FROM batch_envelopes ORDER BY seq').pluck().all()).toEqual([3]);
  });
});

describe('writes that ride in the next reading commit', () => {
  it('are written inside the reading commit, not in a transaction of their own', () => {
    const path = dbPath();
    const db = openDatabase(path);
    const store = new ReadingStore(db, 1);
    store.commit([{ source: 'mqtt', readings: [reading('a', 1, 1)] }]);
    restartWal(db);
    let failures = 0;
    store.riders.ride('snapshot', () => setMeta(db, 'agent_snapshot', 'x'.repeat(500)), () => failures++);
    // Queued, not written: nothing reached the WAL yet.
    expect(walFrames(db, path)).toBe(0);
    expect(getMeta(db, 'agent_snapshot')).toBeUndefined();
    store.commit([{ source: 'mqtt', readings: [reading('a', 2, 2)] }]);
    expect(getMeta(db, 'agent_snapshot')).toBe('x'.repeat(500));
    expect(commitFrames(path, db)).toBe(1);
    expect(failures).toBe(0);
    expect(store.riders.size).toBe(0);
  });

  it('a failing rider is reported and rolled back alone: the readings still commit', () => {
    const db = openDatabase(dbPath());
    const store = new ReadingStore(db, 1);
    const errors: string[] = [];
    store.riders.ride('broken', () => {
      setMeta(db, 'half_written', 'yes');
      throw new Error('snapshot failed');
    }, (err) => errors.push((err as Error).message));
    expect(store.commit([{ source: 'mqtt', readings: [reading('a', 1, 1)] }])).toEqual([{ accepted: 1, duplicates: 0 }]);
    expect(errors).toEqual(['snapshot failed']);
    expect(getMeta(db, 'half_written')).toBeUndefined();
    expect(db.prepare('SELECT count(*) FROM readings').pluck().get()).toBe(1);
  });

  it('with no reading commit before the next one of the same key, the waiting one is written alone (an idle agent)', () => {
    const db = openDatabase(dbPath());
    const store = new ReadingStore(db, 1);
    store.riders.ride('snapshot', () => setMeta(db, 'agent_snapshot', 'first'), () => undefined);
    store.riders.ride('snapshot', () => setMeta(db, 'agent_snapshot', 'second'), () => undefined);
    expect(getMeta(db, 'agent_snapshot')).toBe('first');
    store.riders.flushAlone();
    expect(getMeta(db, 'agent_snapshot')).toBe('second');
  });

  it('with no reading commit within their wait, are written alone (an idle agent\'s status stays fresh)', async () => {
    const db = openDatabase(dbPath());
    const riders = new CommitRiders(db, 50);
    riders.ride('snapshot', () => setMeta(db, 'agent_snapshot', 'idle'), () => undefined);
    expect(getMeta(db, 'agent_snapshot')).toBeUndefined();
    await waitFor('the rider written alone', () => getMeta(db, 'agent_snapshot') === 'idle', 10_000, 10);
    expect(riders.size).toBe(0);
  });

  it('wait longer while a reading commit is queued, and are written alone once none is', async () => {
    const db = openDatabase(dbPath());
    const riders = new CommitRiders(db, 20, 60_000);
    let queued = true;
    riders.waitForQueuedCommits(() => queued);
    riders.ride('snapshot', () => setMeta(db, 'agent_snapshot', 'waited'), () => undefined);
    // Ten times the short wait (20 ms): still waiting for the queued commit.
    await new Promise((r) => setTimeout(r, 200));
    expect(getMeta(db, 'agent_snapshot')).toBeUndefined();
    expect(riders.size).toBe(1);
    // The queue emptied without a commit taking it (a failed one): written alone, not after the longer wait.
    queued = false;
    await waitFor('the rider written alone', () => getMeta(db, 'agent_snapshot') === 'waited', 10_000, 10);
    expect(riders.size).toBe(0);
  });

  it('stay queued when the reading commit fails, and are written by the next one', () => {
    const db = openDatabase(dbPath());
    const store = new ReadingStore(db, 1);
    store.riders.ride('snapshot', () => setMeta(db, 'agent_snapshot', 'kept'), () => undefined);
    // A counter the counters table refuses (NOT NULL name) fails the whole transaction.
    expect(() => store.commit([{ source: 'mqtt', readings: [reading('a', 1, 1)], counts: [{ name: null as unknown as string, label: 'x', n: 1 }] }])).toThrow(/NOT NULL/);
    expect(getMeta(db, 'agent_snapshot')).toBeUndefined();
    expect(store.riders.size).toBe(1);
    store.commit([{ source: 'mqtt', readings: [reading('a', 2, 2)] }]);
    expect(getMeta(db, 'agent_snapshot')).toBe('kept');
  });
});
