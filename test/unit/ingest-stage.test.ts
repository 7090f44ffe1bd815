import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IngestStage } from '../../agent/ingest/ingest-stage.js';
import { GroupCommitWriter } from '../../agent/pipeline/group-commit.js';
import { openDatabase } from '../../agent/store/database.js';
import { readCounters, ReadingStore } from '../../agent/store/reading-store.js';
import type { Reading } from '../../agent/types.js';

const store = () => {
  const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'ea-ingest-')), 'edge-agent.db'));
  return { db, ingest: new IngestStage(new GroupCommitWriter(new ReadingStore(db, 1))) };
};
const ok: Reading = { sensor: 'boiler/t', ts: 1_700_000_000_000, timeSource: 'sensor', value: 71.5 };

describe('ingest stage: every reading is checked before the store builds anything from it', () => {
  it('stores the good readings of a submission and counts each bad one by source and reason', async () => {
    const { db, ingest } = store();
    const bad = [
      { ...ok, value: Number.NaN },
      { ...ok, sensor: 'x'.repeat(300) },
      { ...ok, ts: 1.5 },
      { ...ok, timeSource: 'sundial' as Reading['timeSource'] },
      { ...ok, seq: -1 },
    ];
    const result = await ingest.submit({ source: 'plugin', readings: [ok, ...bad, { ...ok, ts: ok.ts + 1 }] });
    expect(result).toEqual({ accepted: 2, duplicates: 0 });
    expect(db.prepare('SELECT count(*) FROM readings').pluck().get()).toBe(2);
    const rejected = readCounters(db).filter((c) => c.name === 'rejected');
    expect(rejected.reduce((a, c) => a + c.value, 0)).toBe(5);
    expect(rejected.map((c) => c.label)).toEqual(
      expect.arrayContaining([
        'plugin: sensor boiler/t: value NaN is not a finite number',
        'plugin: sensor name longer than 256 characters',
        'plugin: sensor boiler/t: time 1.5 is not an integer number of ms',
      ]),
    );
  });

  it('refuses an oversized submission as one counted rejection, storing none of it', async () => {
    const { db, ingest } = store();
    const many = Array.from({ length: 100_001 }, (_, i) => ({ ...ok, ts: ok.ts + i }));
    expect(await ingest.submit({ source: 'plugin', readings: many })).toEqual({ accepted: 0, duplicates: 0 });
    expect(db.prepare('SELECT count(*) FROM readings').pluck().get()).toBe(0);
    expect(readCounters(db)).toContainEqual({ name: 'rejected', label: 'plugin: 100001 readings in one submission (at most 100000)', value: 1 });
  });
});
