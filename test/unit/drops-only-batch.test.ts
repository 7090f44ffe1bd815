import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { verifyAnyBatchEnvelope } from '../../agent/identity/batch-any.js';
import { Identity } from '../../agent/identity/keys.js';
import { Batcher } from '../../agent/pipeline/batcher.js';
import { BatchStore } from '../../agent/store/batch-store.js';
import { openDatabase } from '../../agent/store/database.js';
import { ReadingStore } from '../../agent/store/reading-store.js';

const silent = pino({ level: 'silent' });

describe('drops-only batches (wire-format.md §12.12)', () => {
  it('the batcher cuts drops alone once they waited batch.max_age_ms with batch.max_pending reached, one batch past it and no more', () => {
    const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'ea-drops-')), 'edge-agent.db'));
    const readings = new ReadingStore(db, 1);
    const batches = new BatchStore(db);
    const batcher = new Batcher(batches, Identity.generate(), { maxReadings: 10, maxAgeMs: 10, bootCounter: 1, clockSynced: () => true, maxPending: 1, reportDrops: true }, silent);
    readings.commit([{ source: 'mqtt', readings: Array.from({ length: 30 }, (_, i) => ({ sensor: 'a', ts: i, timeSource: 'sensor' as const, value: i })) }]);
    batcher.noteCommitted(30);
    batcher.cutDue(true);
    expect(batches.pendingCount()).toBe(1); // max_pending: 20 readings held unbatched
    // What the disk budget records when it drops readings (store/budget.ts).
    const drop = (n: number) => {
      db.prepare("INSERT INTO drops_unreported (sensor, count) VALUES ('a', ?) ON CONFLICT (sensor) DO UPDATE SET count = count + excluded.count").run(n);
      db.prepare("INSERT INTO meta (key, value) VALUES ('drops_unreported_since', ?) ON CONFLICT (key) DO NOTHING").run(String(Date.now() - 1000));
    };
    drop(7);
    batcher.cutDue();
    expect(batches.pendingCount()).toBe(2);
    const last = verifyAnyBatchEnvelope(batches.get(2)!.envelope);
    expect(last.body).toMatchObject({ n: 0, drops: [{ s: 'a', n: 7 }] });
    expect(last.version).toBe(3);
    expect(batches.unreportedDrops()).toEqual({ readings: 0, sensors: 0, since: null });
    // While that one waits, newer drops wait for it: never more than max_pending + 1 pending.
    drop(3);
    batcher.cutDue();
    expect(batches.pendingCount()).toBe(2);
    expect(batches.unreportedDrops()).toMatchObject({ readings: 3, sensors: 1 });
  });
});
