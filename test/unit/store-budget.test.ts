import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { verifyBatchEnvelope } from '../../agent/identity/batch-format.js';
import { Identity } from '../../agent/identity/keys.js';
import { GroupCommitWriter } from '../../agent/pipeline/group-commit.js';
import { BatchStore } from '../../agent/store/batch-store.js';
import { StoreBudget } from '../../agent/store/budget.js';
import { openDatabase, type Db } from '../../agent/store/database.js';
import { readCounters, ReadingStore, type Submission } from '../../agent/store/reading-store.js';
import { batchEncoder } from '../../agent/pipeline/batch-encoder.js';

const silent = pino({ level: 'silent' });

function setup(maxBytes = 0) {
  const path = join(mkdtempSync(join(tmpdir(), 'ea-budget-')), 'edge-agent.db');
  const db = openDatabase(path);
  const store = new ReadingStore(db, 1);
  return { db, path, store, writer: new GroupCommitWriter(store), budget: new StoreBudget(db, path, maxBytes, silent), batches: new BatchStore(db) };
}

let nextTs = 1_763_000_000_000;
const sub = (n: number, sensors = ['a', 'b']): Submission => ({
  source: 'mqtt',
  readings: Array.from({ length: n }, (_, i) => ({ sensor: sensors[i % sensors.length]!, ts: nextTs++, timeSource: 'sensor' as const, value: i })),
});

/** SQLite's page limit stands in for a full disk: the same SQLITE_FULL a full SD card gives. */
function fillUntilFull(db: Db, store: ReadingStore): void {
  db.pragma(`max_page_count = ${(db.pragma('page_count', { simple: true }) as number) + 40}`);
  for (;;) {
    try {
      store.commit([sub(200)]);
    } catch (err) {
      expect((err as { code?: string }).code).toBe('SQLITE_FULL');
      return;
    }
  }
}

const count = (db: Db, sql: string) => db.prepare(sql).pluck().get() as number;

describe('store budget and a full disk', () => {
  it('a commit that hits a full disk acknowledges nothing when no space can be freed', async () => {
    const { db, store, writer } = setup();
    fillUntilFull(db, store);
    const before = count(db, 'SELECT count(*) FROM readings');
    await expect(writer.submit(sub(200))).rejects.toMatchObject({ code: 'SQLITE_FULL' });
    expect(count(db, 'SELECT count(*) FROM readings')).toBe(before);
  });

  it('on SQLITE_FULL drops the oldest unbatched readings, counts them per sensor, and commits the new ones', async () => {
    const { db, store, writer, budget } = setup();
    writer.onStoreFull(() => budget.makeRoom());
    fillUntilFull(db, store);
    const oldest = count(db, 'SELECT min(id) FROM readings');
    const result = await writer.submit(sub(200, ['c']));
    expect(result.accepted).toBe(200);
    expect(count(db, "SELECT count(*) FROM readings WHERE sensor = 'c'")).toBe(200);
    expect(count(db, 'SELECT min(id) FROM readings')).toBeGreaterThan(oldest);
    const dropped = readCounters(db).filter((c) => c.name === 'dropped');
    expect(dropped.map((c) => c.label)).toEqual(['a', 'b']);
    const total = dropped.reduce((a, c) => a + c.value, 0);
    expect(total).toBeGreaterThan(0);
    expect(count(db, 'SELECT sum(count) FROM drops_unreported')).toBe(total);
  });

  it('never drops readings already inside a signed batch', async () => {
    const { db, store, writer, budget, batches } = setup();
    writer.onStoreFull(() => budget.makeRoom());
    for (let i = 0; i < 20; i++) store.commit([sub(200)]);
    const id = Identity.generate();
    while (batches.cutBatch(1000, batchEncoder(id, { bootCounter: 1, clockSynced: true, now: Date.now() })));
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
    const signed = count(db, 'SELECT count(*) FROM readings');
    await expect(writer.submit(sub(200))).rejects.toMatchObject({ code: 'SQLITE_FULL' });
    expect(count(db, 'SELECT count(*) FROM readings')).toBe(signed);
    expect(readCounters(db).filter((c) => c.name === 'dropped')).toEqual([]);
  });

  it('the next batch carries the drops since the previous one, once, and verifies', () => {
    const { db, store, budget, batches } = setup(1024 * 1024);
    const id = Identity.generate();
    store.commit([sub(10)]);
    const first = batches.cutBatch(1000, batchEncoder(id, { bootCounter: 1, clockSynced: true, now: Date.now() }))!;
    expect(first.body.drops).toBeUndefined();
    for (let i = 0; i < 100 && count(db, 'SELECT count(*) FROM drops_unreported') === 0; i++) {
      store.commit([sub(2000)]);
      budget.enforce();
    }
    const u = budget.usage();
    expect(u.usedBytes).toBeLessThanOrEqual(budget.dataAllowance);
    expect(u.fileBytes + u.walBytes).toBeLessThanOrEqual(1024 * 1024 + 256 * 1024);
    const reported = db.prepare('SELECT sensor AS s, count AS n FROM drops_unreported ORDER BY sensor').all();
    const second = batches.cutBatch(1000, batchEncoder(id, { bootCounter: 1, clockSynced: true, now: Date.now() }))!;
    expect(second.body.drops).toEqual(reported);
    expect(verifyBatchEnvelope(second.envelope).body.drops).toEqual(reported);
    expect(count(db, 'SELECT count(*) FROM drops_unreported')).toBe(0);
    const third = batches.cutBatch(1000, batchEncoder(id, { bootCounter: 1, clockSynced: true, now: Date.now() }))!;
    expect(third.body.drops).toBeUndefined();
  });

  it('with no unbatched reading left, drops plain verdicts before alert changes, counted per key', () => {
    const { db, budget } = setup(1024 * 1024);
    const insert = db.prepare(
      `INSERT INTO verdicts (key, model_id, model_sha256, window_start, ts, reading_id, score, outputs, value, threshold, alert, changed, boot, created_at)
       VALUES (?, 'm1', zeroblob(32), ?, ?, NULL, 0.5, '[0.5]', 0.5, 0.9, ?, ?, 1, 0)`,
    );
    db.transaction(() => {
      for (let i = 0; i < 12_000; i++) insert.run(`pump${i % 3}`, i, i, i % 100 === 0 ? 1 : 0, i % 100 === 0 ? 1 : 0);
    })();
    const changedBefore = count(db, 'SELECT count(*) FROM verdicts WHERE changed = 1');
    budget.enforce();
    expect(budget.usage().usedBytes).toBeLessThanOrEqual(budget.dataAllowance);
    expect(count(db, 'SELECT count(*) FROM verdicts WHERE changed = 1')).toBe(changedBefore);
    const plainLeft = count(db, 'SELECT count(*) FROM verdicts WHERE changed = 0');
    expect(plainLeft).toBeLessThan(12_000 - changedBefore);
    // the oldest went first
    expect(count(db, 'SELECT min(id) FROM verdicts WHERE changed = 0')).toBeGreaterThan(2);
    const dropped = readCounters(db).filter((c) => c.name === 'dropped_verdicts');
    expect(dropped.reduce((a, c) => a + c.value, 0)).toBe(12_000 - changedBefore - plainLeft);
    expect(dropped.map((c) => c.label)).toEqual(['pump0', 'pump1', 'pump2']);
  });

  it('without a budget, enforce never drops', () => {
    const { db, store, budget } = setup(0);
    store.commit([sub(5000)]);
    expect(budget.enforce().dropped.size).toBe(0);
    expect(count(db, 'SELECT count(*) FROM readings')).toBe(5000);
  });
});
