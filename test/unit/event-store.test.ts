import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../agent/store/database.js';
import { EventStore, MAX_UNBATCHED_EVENTS, unbatchedEvents } from '../../agent/store/event-store.js';
import { readCounters } from '../../agent/store/reading-store.js';

const dbPath = () => join(mkdtempSync(join(tmpdir(), 'ea-events-')), 'edge-agent.db');

describe('event store', () => {
  it('keeps events in order for the next batch, with key and detail as recorded', () => {
    const db = openDatabase(dbPath());
    const events = new EventStore(db, 3);
    events.record({ kind: 'clock.step', key: '', ts: 1000, detail: { step_ms: -86_400_000 } });
    events.record({ kind: 'model.relearn', key: 'pump1/temp', ts: 1001 });
    expect(unbatchedEvents(db, 10)).toEqual([
      { id: 1, ts: 1000, kind: 'clock.step', key: '', detail: { step_ms: -86_400_000 } },
      { id: 2, ts: 1001, kind: 'model.relearn', key: 'pump1/temp' },
    ]);
  });

  it('refuses an event that breaks the wire-format limits, naming it', () => {
    const events = new EventStore(openDatabase(dbPath()));
    expect(() => events.record({ kind: 'Clock Step', key: '' })).toThrow(/event "Clock Step".*field k/);
    expect(() => events.record({ kind: 'x.y', key: '😀'.repeat(129) })).toThrow(/field s must be 1-256 UTF-16 code units/);
    const big = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, i]));
    expect(() => events.record({ kind: 'x.y', key: 'a', detail: big })).toThrow(/detail holds 1-16 entries/);
  });

  it('bounds the events waiting for a batch, counting the oldest it deletes', () => {
    const db = openDatabase(dbPath());
    const events = new EventStore(db);
    db.transaction(() => {
      for (let i = 0; i < MAX_UNBATCHED_EVENTS + 5; i++) events.record({ kind: 'sensor.flap', key: 's', ts: i });
    })();
    const waiting = unbatchedEvents(db, MAX_UNBATCHED_EVENTS + 10);
    expect(waiting).toHaveLength(MAX_UNBATCHED_EVENTS);
    expect(waiting[0]!.ts).toBe(5);
    expect(readCounters(db).find((c) => c.name === 'dropped_events')?.value).toBe(5);
  });
});
