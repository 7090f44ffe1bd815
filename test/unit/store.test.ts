import Database from 'better-sqlite3';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyStoreChain } from '../../agent/identity/chain-verify.js';
import { verifyBatchEnvelope } from '../../agent/identity/batch-format.js';
import { Identity } from '../../agent/identity/keys.js';
import { COALESCE_READINGS, GroupCommitWriter, MAX_COALESCE_READINGS } from '../../agent/pipeline/group-commit.js';
import { backoffDelay } from '../../agent/util/backoff.js';
import { BatchStore } from '../../agent/store/batch-store.js';
import { openDatabase } from '../../agent/store/database.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../agent/store/migrations.js';
import { bindDevice, nextBootCounter } from '../../agent/store/meta.js';
import { pruneDelivered } from '../../agent/store/retention.js';
import { readCounters, readCursors, ReadingStore } from '../../agent/store/reading-store.js';
import type { Reading } from '../../agent/types.js';
import { countCommits } from '../helpers/store.js';
import { batchEncoder } from '../../agent/pipeline/batch-encoder.js';

const dbPath = () => join(mkdtempSync(join(tmpdir(), 'ea-store-')), 'edge-agent.db');
const reading = (sensor: string, ts: number, value: number, timeSource: Reading['timeSource'] = 'sensor'): Reading => ({ sensor, ts, timeSource, value });

describe('readings store', () => {
  it('commits concurrent submissions in one group and resolves each only after the commit', async () => {
    const db = openDatabase(dbPath());
    const store = new ReadingStore(db, 1);
    const commits = countCommits(store);
    const writer = new GroupCommitWriter(store);
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => writer.submit({ source: 'mqtt', readings: [reading('s1', 1000 + i, i)] })));
    expect(results.every((r) => r.accepted === 1)).toBe(true);
    expect(commits.count).toBe(1);
    expect(db.prepare('SELECT count(*) FROM readings').pluck().get()).toBe(200);
  });

  it('settles a commit\'s submissions before its listeners run (a batch cut or scoring must not hold up the acknowledgements), and close() tells them at once', async () => {
    const db = openDatabase(dbPath());
    const writer = new GroupCommitWriter(new ReadingStore(db, 1));
    const order: string[] = [];
    writer.onCommittedReadings((r) => order.push(`readings ${r.length}`));
    writer.onCommitted((n) => order.push(`count ${n}`));
    await Promise.all(Array.from({ length: 3 }, (_, i) => writer.submit({ source: 'mqtt', readings: [reading('s1', 1000 + i, i)] }).then(() => order.push('settled'))));
    expect(order).toEqual(['settled', 'settled', 'settled']);
    await new Promise(setImmediate);
    expect(order).toEqual(['settled', 'settled', 'settled', 'readings 3', 'count 3']);
    // At shutdown nothing is left for a later turn: the batcher cuts the last readings before the store closes.
    void writer.submit({ source: 'mqtt', readings: [reading('s1', 2000, 0)] });
    writer.close();
    expect(order.slice(5)).toEqual(['readings 1', 'count 1']);
  });

  it('a flush of several groups tells the listeners between them (the store budget acts before the next commit), the last group after its acknowledgements', async () => {
    const db = openDatabase(dbPath());
    const store = new ReadingStore(db, 1);
    const order: string[] = [];
    const commit = store.commit.bind(store);
    store.commit = (...args) => {
      order.push('commit');
      return commit(...args);
    };
    const writer = new GroupCommitWriter(store, 2); // at most 2 readings per commit
    writer.onCommitted((n) => order.push(`count ${n}`));
    await Promise.all(Array.from({ length: 5 }, (_, i) => writer.submit({ source: 'mqtt', readings: [reading('s1', 1000 + i, i)] })));
    expect(order).toEqual(['commit', 'count 2', 'commit', 'count 2', 'commit']);
    await new Promise(setImmediate);
    expect(order.at(-1)).toBe('count 1');
  });

  it('coalesces a low rate over store.commit_interval_ms, and commits within a sender\'s own limit (commitWithinMs) when it has one', { timeout: 60_000 }, async () => {
    const db = openDatabase(dbPath());
    const store = new ReadingStore(db, 1);
    const commits = countCommits(store);
    // An interval far past the test's timeout: a submission that waited for it would fail the test.
    const writer = new GroupCommitWriter(store, 5000, 600_000);
    // An agent that has not committed for an interval commits at once (a first reading after a start).
    expect((await writer.submit({ source: 'mqtt', readings: [reading('m', 0, 0)] })).accepted).toBe(1);
    expect(commits.count).toBe(1);
    // Right after a commit, readings wait for the interval since it, unless a sender's limit is nearer.
    const mqtt = writer.submit({ source: 'mqtt', readings: [reading('m', 1, 1)] });
    const serial = writer.submit({ source: 'mcu', readings: [reading('s', 1, 1)], commitWithinMs: 20 });
    // The serial reading's deadline makes the commit due: both ride in it.
    expect((await serial).accepted).toBe(1);
    expect((await mqtt).accepted).toBe(1);
    expect(commits.count).toBe(2);
    // 64 waiting readings make a commit due at once, whatever the interval.
    const many = await Promise.all(Array.from({ length: 64 }, (_, i) => writer.submit({ source: 'mqtt', readings: [reading('m', 10 + i, i)] })));
    expect(many.every((r) => r.accepted === 1)).toBe(true);
    expect(commits.count).toBe(3);
    writer.close();
  });

  it('a group that gathered slowly waits for the interval (flash wear at a low rate) until MAX_COALESCE_READINGS wait', { timeout: 60_000 }, async () => {
    const db = openDatabase(dbPath());
    const store = new ReadingStore(db, 1);
    const commits = countCommits(store);
    // Every group counts as gathered slowly (fastFillMs < 0), and the interval is far past the test's timeout.
    const writer = new GroupCommitWriter(store, 5000, 600_000, -1);
    await writer.submit({ source: 'mqtt', readings: [reading('m', 0, 0)] });
    const settled: number[] = [];
    const submitMany = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => writer.submit({ source: 'mqtt', readings: [reading('m', from + i, i)] }).then((r) => settled.push(r.accepted)));
    const first = submitMany(1, COALESCE_READINGS);
    // Turns of the event loop in which a commit due by size would have run (it is scheduled with setImmediate).
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(commits.count).toBe(1);
    expect(settled).toEqual([]);
    const rest = submitMany(1000, MAX_COALESCE_READINGS - COALESCE_READINGS);
    await Promise.all([...first, ...rest]);
    expect(commits.count).toBe(2);
    expect(settled.length).toBe(MAX_COALESCE_READINGS);
    writer.close();
  });

  it('at most one commit per store.commit_interval_ms: a reading after a commit waits and shares the next one', { timeout: 60_000 }, async () => {
    const db = openDatabase(dbPath());
    const store = new ReadingStore(db, 1);
    const commits = countCommits(store);
    const writer = new GroupCommitWriter(store, 5000, 300);
    await writer.submit({ source: 'mqtt', readings: [reading('m', 0, 0)] });
    const first = writer.submit({ source: 'mqtt', readings: [reading('m', 1, 1)] });
    // A turn of the event loop later (an immediate commit would have happened by now), one more.
    await new Promise((r) => setImmediate(r));
    const second = writer.submit({ source: 'mqtt', readings: [reading('m', 2, 2)] });
    expect((await first).accepted + (await second).accepted).toBe(2);
    expect(commits.count).toBe(2);
    writer.close();
  });

  it('the tail of a burst commits about as soon as the burst filled its groups, not after the whole interval; a low rate after it waits again', { timeout: 60_000 }, async () => {
    const db = openDatabase(dbPath());
    const store = new ReadingStore(db, 1);
    const commits = countCommits(store);
    const interval = 3000;
    const writer = new GroupCommitWriter(store, 5000, interval);
    await writer.submit({ source: 'mqtt', readings: [reading('m', 0, 0)] });
    // A burst: 64 readings at once fill a group, which commits by its size.
    await Promise.all(Array.from({ length: 64 }, (_, i) => writer.submit({ source: 'mqtt', readings: [reading('m', 1 + i, i)] })));
    expect(commits.count).toBe(2);
    // Its last few readings (fewer than a group) commit in ~10 ms, not after the interval.
    let t = performance.now();
    const tail = await Promise.all(Array.from({ length: 3 }, (_, i) => writer.submit({ source: 'mqtt', readings: [reading('m', 100 + i, i)] })));
    expect(tail.every((r) => r.accepted === 1)).toBe(true);
    expect(commits.count).toBe(3);
    expect(performance.now() - t).toBeLessThan(interval);
    // After that commit the rate is unknown again: the next reading waits for the interval since it
    // (timers never fire early, so load can only make this longer).
    t = performance.now();
    expect((await writer.submit({ source: 'mqtt', readings: [reading('m', 200, 0)] })).accepted).toBe(1);
    expect(commits.count).toBe(4);
    expect(performance.now() - t).toBeGreaterThanOrEqual(interval - 100);
    writer.close();
  });

  it('drops a repeated sensor-timed reading as a counted duplicate, but keeps gateway-timed repeats', () => {
    const db = openDatabase(dbPath());
    const store = new ReadingStore(db, 1);
    const [a] = store.commit([{ source: 'mqtt', readings: [reading('t', 5, 1), reading('t', 6, 1)] }]);
    const [b] = store.commit([{ source: 'mqtt', readings: [reading('t', 5, 1), reading('g', 5, 1, 'gateway-synced'), reading('g', 5, 1, 'gateway-synced')] }]);
    expect(a).toEqual({ accepted: 2, duplicates: 0 });
    expect(b).toEqual({ accepted: 2, duplicates: 1 });
    expect(readCounters(db)).toContainEqual({ name: 'duplicates', label: 'mqtt', value: 1 });
  });

  it('recognises an MQTT redelivery (DUP, same packet id and bytes) but not a new message reusing the packet id', () => {
    const db = openDatabase(dbPath());
    const store = new ReadingStore(db, 1);
    const fp = Buffer.from('aa', 'hex');
    const g = [reading('g', 5, 1, 'gateway-unsynced')];
    expect(store.commit([{ source: 'mqtt', readings: g, resend: { key: '7', fingerprint: fp, resent: false } }])[0]).toEqual({ accepted: 1, duplicates: 0 });
    expect(store.commit([{ source: 'mqtt', readings: g, resend: { key: '7', fingerprint: fp, resent: true } }])[0]).toEqual({ accepted: 0, duplicates: 1 });
    // Packet ids are reused after their PUBACK: a fresh message (no DUP) with id 7 is new data.
    expect(store.commit([{ source: 'mqtt', readings: g, resend: { key: '7', fingerprint: fp, resent: false } }])[0]).toEqual({ accepted: 1, duplicates: 0 });
  });

  it('recognises the redelivery of a sensor-timed MQTT message by its readings, without a guard row to write per message', () => {
    const db = openDatabase(dbPath());
    const store = new ReadingStore(db, 1);
    const guardRows = () => db.prepare('SELECT count(*) FROM source_resend_guard').pluck().get();
    // An untimed message leaves a row for packet id 7; a sensor-timed message reusing id 7 removes it.
    store.commit([{ source: 'mqtt', readings: [reading('g', 5, 1, 'gateway-unsynced')], resend: { key: '7', fingerprint: Buffer.from('aa', 'hex'), resent: false } }]);
    expect(guardRows()).toBe(1);
    const timed = [reading('t', 5, 1), reading('u', 5, 2)];
    const fp = Buffer.from('bb', 'hex');
    expect(store.commit([{ source: 'mqtt', readings: timed, resend: { key: '7', fingerprint: fp, resent: false } }])[0]).toEqual({ accepted: 2, duplicates: 0 });
    expect(guardRows()).toBe(0);
    // The broker's redelivery (DUP, same bytes) is a counted duplicate all the same.
    expect(store.commit([{ source: 'mqtt', readings: timed, resend: { key: '7', fingerprint: fp, resent: true } }])[0]).toEqual({ accepted: 0, duplicates: 2 });
    expect(readCounters(db)).toContainEqual({ name: 'duplicates', label: 'mqtt', value: 2 });
    // A redelivery of an untimed message that was never committed is new data (no stale row matches it).
    expect(store.commit([{ source: 'mqtt', readings: [reading('g', 5, 1, 'gateway-unsynced')], resend: { key: '7', fingerprint: Buffer.from('aa', 'hex'), resent: true } }])[0]).toEqual({ accepted: 1, duplicates: 0 });
    expect(guardRows()).toBe(1);
  });

  it('keeps the MQTT redelivery guard and the serial progress of a store made before the neutral source tables', () => {
    const path = dbPath();
    const old = new Database(path);
    const neutral = MIGRATIONS.findIndex((m) => m.includes('CREATE TABLE source_cursors'));
    for (let v = 0; v < neutral; v++) old.exec(MIGRATIONS[v]!);
    old.pragma(`user_version = ${neutral}`);
    old.prepare('INSERT INTO mqtt_redelivery (source, message_id, fingerprint) VALUES (?, ?, ?)').run('mqtt', 7, Buffer.from('aa', 'hex'));
    old.prepare('INSERT INTO serial_progress (source, device, session, sensor, last_seq, updated_at) VALUES (?, ?, ?, ?, ?, ?)').run('mcu', 'ab12', 3, 1, 41, 5);
    old.close();

    const db = openDatabase(path);
    const store = new ReadingStore(db, 1);
    // The broker's redelivery of packet 7 (DUP, same bytes) after the upgrade is still a duplicate.
    const g = [reading('g', 5, 1, 'gateway-unsynced')];
    expect(store.commit([{ source: 'mqtt', readings: g, resend: { key: '7', fingerprint: Buffer.from('aa', 'hex'), resent: true } }])[0]).toEqual({ accepted: 0, duplicates: 1 });
    expect(readCursors(db, 'mcu', 'ab12/3/')).toEqual(new Map([['ab12/3/1', 41]]));
    expect(readCursors(db, 'mcu', 'ab12/4/')).toEqual(new Map());
  });

  it('counts rejected payloads persistently by source and reason', () => {
    const path = dbPath();
    const db = openDatabase(path);
    new ReadingStore(db, 1).commit([{ source: 'mqtt', readings: [], rejected: ['not JSON', 'not JSON'] }]);
    db.close();
    expect(readCounters(openDatabase(path))).toContainEqual({ name: 'rejected', label: 'mqtt: not JSON', value: 2 });
  });

  it('refuses a store written by a newer agent, and a store of another device', () => {
    const path = dbPath();
    openDatabase(path).close();
    const raw = new Database(path);
    raw.pragma('user_version = 99');
    raw.close();
    expect(() => openDatabase(path)).toThrow(/schema version 99, newer than this agent understands/);
    const other = openDatabase(dbPath());
    bindDevice(other, 'did:key:zA', 'x.db');
    expect(() => bindDevice(other, 'did:key:zB', 'x.db')).toThrow(/belongs to device did:key:zA/);
  });

  it('migrates a store written by an older agent, keeping its readings and a backup of the file', () => {
    const path = dbPath();
    const old = new Database(path);
    old.exec(MIGRATIONS[0]!);
    old.pragma('user_version = 1');
    old.prepare("INSERT INTO readings (sensor, ts, time_source, value, source, received_at, boot) VALUES ('a', 1, 0, 2.5, 'mqtt', 1, 1)").run();
    old.close();
    const db = openDatabase(path);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.prepare('SELECT sensor, value FROM readings').all()).toEqual([{ sensor: 'a', value: 2.5 }]);
    expect(existsSync(`${path}.v1.bak`)).toBe(true);
  });

  it('counts boots across restarts', () => {
    const path = dbPath();
    expect(nextBootCounter(openDatabase(path))).toBe(1);
    expect(nextBootCounter(openDatabase(path))).toBe(2);
  });
});

describe('batches', () => {
  it('cuts chained batches in acceptance order and re-verifies the whole chain', () => {
    const db = openDatabase(dbPath());
    const id = Identity.generate();
    bindDevice(db, id.deviceId, 'x');
    new ReadingStore(db, 1).commit([{ source: 'mqtt', readings: Array.from({ length: 25 }, (_, i) => reading(`s${i % 3}`, 1000 + i, i)) }]);
    const batches = new BatchStore(db);
    const cut = () => batches.cutBatch(10, batchEncoder(id, { bootCounter: 1, clockSynced: true, now: 5 }));
    const [b1, b2, b3, none] = [cut(), cut(), cut(), cut()];
    expect([b1!.body.n, b2!.body.n, b3!.body.n, none]).toEqual([10, 10, 5, null]);
    expect(verifyBatchEnvelope(b2!.envelope).body.prev).toEqual(b1!.hash);
    expect(b1!.body.r.map((r) => r.i)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(verifyStoreChain(db).problems).toEqual([]);
  });

  it('catches a reading edited in the buffer after it was signed', () => {
    const db = openDatabase(dbPath());
    const id = Identity.generate();
    bindDevice(db, id.deviceId, 'x');
    new ReadingStore(db, 1).commit([{ source: 'mqtt', readings: [reading('a', 1, 1), reading('b', 2, 2)] }]);
    new BatchStore(db).cutBatch(10, batchEncoder(id, { bootCounter: 1, clockSynced: true, now: 5 }));
    db.prepare("UPDATE readings SET value = 42 WHERE sensor = 'b'").run();
    expect(verifyStoreChain(db).problems).toEqual(['batch 1: stored reading 2 (sensor b) differs from the signed one']);
  });
});

describe('retention', () => {
  it('deletes delivered batches and their readings past retention, never undelivered ones or the newest batch', () => {
    const db = openDatabase(dbPath());
    const id = Identity.generate();
    bindDevice(db, id.deviceId, 'x');
    new ReadingStore(db, 1).commit([{ source: 'mqtt', readings: Array.from({ length: 40 }, (_, i) => reading('s', 1000 + i, i)) }]);
    const batches = new BatchStore(db);
    for (let i = 0; i < 4; i++) batches.cutBatch(10, batchEncoder(id, { bootCounter: 1, clockSynced: true, now: 5 }));
    const day = 86_400_000;
    batches.markDelivered(1, 1000);
    batches.markDelivered(2, 1000 + 2 * day); // recent
    batches.markDelivered(4, 1000); // newest: the chain continues from it
    expect(pruneDelivered(db, day, 1000 + 2 * day)).toEqual({ batches: 1, readings: 10 });
    expect(batches.all().map((b) => [b.seq, b.state])).toEqual([[2, 'delivered'], [3, 'pending'], [4, 'delivered']]);
    expect(db.prepare('SELECT count(*) FROM readings').pluck().get()).toBe(30);
    expect(batches.lastBatch().seq).toBe(4);
    expect(verifyStoreChain(db).problems).toEqual([]);
  });

  it('prunes the oldest delivered batches a few at a time when asked (a full disk has WAL room for one batch, not for all)', () => {
    const db = openDatabase(dbPath());
    const id = Identity.generate();
    bindDevice(db, id.deviceId, 'x');
    new ReadingStore(db, 1).commit([{ source: 'mqtt', readings: Array.from({ length: 50 }, (_, i) => reading('s', 1000 + i, i)) }]);
    const batches = new BatchStore(db);
    for (let i = 0; i < 5; i++) batches.cutBatch(10, batchEncoder(id, { bootCounter: 1, clockSynced: true, now: 5 }));
    for (let seq = 1; seq <= 5; seq++) batches.markDelivered(seq, 1000);
    expect(pruneDelivered(db, 0, 2000, 1)).toEqual({ batches: 1, readings: 10 });
    expect(batches.all().map((b) => b.seq)).toEqual([2, 3, 4, 5]);
    expect(pruneDelivered(db, 0, 2000, 2)).toEqual({ batches: 2, readings: 20 });
    expect(pruneDelivered(db, 0, 2000, 2)).toEqual({ batches: 1, readings: 10 });
    expect(pruneDelivered(db, 0, 2000, 2)).toEqual({ batches: 0, readings: 0 });
    expect(batches.all().map((b) => b.seq)).toEqual([5]);
    expect(verifyStoreChain(db).problems).toEqual([]);
  });
});

describe('uplink back-off', () => {
  it('grows exponentially up to the cap, with jitter in the upper half', () => {
    expect(backoffDelay(1, 500, 60_000, () => 0)).toBe(250);
    expect(backoffDelay(1, 500, 60_000, () => 1)).toBe(500);
    expect(backoffDelay(4, 500, 60_000, () => 1)).toBe(4000);
    expect(backoffDelay(30, 500, 60_000, () => 0)).toBe(30_000);
    expect(backoffDelay(30, 500, 60_000, () => 1)).toBe(60_000);
  });
});
