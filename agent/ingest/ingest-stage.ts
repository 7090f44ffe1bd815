import type { ReadingSink, Submission, SubmitResult } from '../contracts/reading-sink.js';
import { checkSensorId, MAX_UNIT } from '../payloads/types.js';
import { TIME_SOURCES, type Reading } from '../types.js';

/** At most this many readings per submission: a source's payload limits keep far below it (SenML packs, serial frames). */
export const MAX_READINGS_PER_SUBMISSION = 100_000;

/** Why a reading cannot be stored, or undefined. The rules of the store's columns and of the wire format (docs/wire-format.md §4.2). */
export function readingProblem(r: Reading): string | undefined {
  if (typeof r.sensor !== 'string' || r.sensor.length === 0) return 'reading without a sensor id';
  const badName = checkSensorId(r.sensor);
  if (badName) return `sensor ${badName}`;
  if (!Number.isSafeInteger(r.ts)) return `sensor ${r.sensor}: time ${String(r.ts)} is not an integer number of ms`;
  if (typeof r.value !== 'number' || !Number.isFinite(r.value)) return `sensor ${r.sensor}: value ${String(r.value)} is not a finite number`;
  if (!TIME_SOURCES.includes(r.timeSource)) return `sensor ${r.sensor}: unknown time source ${String(r.timeSource)}`;
  if (r.unit !== undefined && (typeof r.unit !== 'string' || r.unit.length > MAX_UNIT)) return `sensor ${r.sensor}: unit longer than ${MAX_UNIT} characters`;
  if (r.seq !== undefined && (!Number.isSafeInteger(r.seq) || r.seq < 0)) return `sensor ${r.sensor}: seq ${String(r.seq)} is not a non-negative integer`;
  return undefined;
}

/**
 * The ingest stage: every reading any source submits is checked here, at the boundary of the
 * store, before anything is built from it. Sources parse their own bytes (with agent/payloads/);
 * this is the one place that guarantees a plugin bug (NaN, a 10 kB sensor name, a float time)
 * becomes a counted rejection (counter `rejected`, by source and reason) instead of a row that
 * breaks the batch encoder or the receiver. The rest of the submission goes on to commit.
 */
export class IngestStage implements ReadingSink {
  constructor(private readonly next: ReadingSink) {}

  submit(sub: Submission): Promise<SubmitResult> {
    if (sub.readings.length > MAX_READINGS_PER_SUBMISSION) {
      return this.next.submit({
        ...sub,
        readings: [],
        rejected: [...(sub.rejected ?? []), `${sub.readings.length} readings in one submission (at most ${MAX_READINGS_PER_SUBMISSION})`],
      });
    }
    let problems: string[] | undefined;
    for (const r of sub.readings) {
      if (readingProblem(r) !== undefined) {
        problems = [];
        break;
      }
    }
    // The common case, every reading fine, passes the submission on as it is (no copy).
    if (!problems) return this.next.submit(sub);
    const readings: Reading[] = [];
    for (const r of sub.readings) {
      const problem = readingProblem(r);
      if (problem === undefined) readings.push(r);
      else problems.push(problem);
    }
    return this.next.submit({ ...sub, readings, rejected: [...(sub.rejected ?? []), ...problems] });
  }
}
