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
import { VerdictStore } from '../../agent/store/verdict-store.js';

const silent = pino({ level: 'silent' });
const N = 10_000; // batch.max_readings at its maximum

// The longest names the agent accepts (payloads/types.ts MAX_SENSOR_ID, MAX_UNIT): 10,000 such
// readings and their verdicts pass §6.3's 8 MiB and §12.9's 4 MiB. A batch over them would be
// refused by every receiver for good, and the chain behind it would never be delivered.
const sensor = (i: number) => `s${String(i % 20).padStart(2, '0')}/${'x'.repeat(250)}`;
const unit = 'u'.repeat(32);

function storeWith(readings: number, verdicts: number) {
  const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'ea-batch-size-')), 'edge-agent.db'));
  const committed = new ReadingStore(db, 1).commit([
    { source: `src-${'y'.repeat(24)}`, readings: Array.from({ length: readings }, (_, i) => ({ sensor: sensor(i), ts: 1_764_000_000_000 + i, timeSource: 'sensor' as const, value: i + 0.25, unit, seq: i })) },
  ]);
  expect(committed[0]).toMatchObject({ accepted: readings });
  const sha = new Uint8Array(32).fill(7);
  new VerdictStore(db, 1).commit(
    Array.from({ length: verdicts }, (_, i) => ({
      key: sensor(i),
      modelId: 'm'.repeat(30),
      modelSha256: sha,
      windowStart: 1_764_000_000_000 + i,
      ts: 1_764_000_000_000 + i,
      readingId: i + 1,
      outputs: Object.fromEntries(Array.from({ length: 8 }, (_, k) => [`output_${k}_${'o'.repeat(12)}`, k + 0.5])),
      score: 0.5,
      value: 0.5,
      threshold: 0.9,
      alert: false,
      changed: false,
    })),
  );
  return db;
}

describe('batches stay inside the wire format size limits, whatever batch.max_readings says', () => {
  for (const format of ['auto', 3] as const) {
    it(`format ${format}: ${N} readings and verdicts with the longest names are cut into batches every verifier takes, none lost or doubled`, () => {
      const db = storeWith(N, N);
      const batches = new BatchStore(db);
      const batcher = new Batcher(batches, Identity.generate(), { maxReadings: N, maxAgeMs: 10, bootCounter: 1, clockSynced: () => true, format }, silent);
      batcher.noteCommitted(2 * N);
      batcher.cutDue(true);
      const seen = new Set<number>();
      let verdicts = 0;
      let seq = 1;
      for (let b = batches.get(seq); b; b = batches.get(++seq)) {
        const v = verifyAnyBatchEnvelope(b.envelope); // throws 'malformed' on a batch over the limits
        for (const r of v.body.r) {
          expect(seen.has(r.i)).toBe(false);
          seen.add(r.i);
        }
        verdicts += v.body.vd?.length ?? 0;
      }
      expect(seen.size).toBe(N);
      expect(verdicts).toBe(N);
      expect(seq - 1, 'batches cut').toBeGreaterThan(1);
      console.log(`format ${format}: ${N} readings and ${N} verdicts with 256-character names in ${seq - 1} batches`);
    });
  }
});
