import type { Db } from './database.js';
import { validateEvent, type AgentEventInput, type StoredEvent } from '../identity/event-format.js';
import { statement } from './statements.js';

export type { AgentEventInput, StoredEvent } from '../identity/event-format.js';

/**
 * At most this many events wait for a batch. Beyond it the oldest waiting ones are deleted and
 * counted (counter `dropped_events`): a flood of events (a flapping sensor, a clock that keeps
 * stepping) must not fill the disk, and the newest events say most about the present.
 */
export const MAX_UNBATCHED_EVENTS = 10_000;

interface EventRow {
  id: number;
  ts: number;
  kind: string;
  key: string;
  detail: string | null;
}

/**
 * Events the agent reports to the network (docs/wire-format.md §12.5): stored here, then carried
 * by the next batch cut, signed with it. Recording validates the event against the wire format's
 * limits first, so a bad event fails at its call site with a message naming it, not at batch cut.
 */
export class EventStore {
  private readonly insert;
  private readonly countUnbatched;
  private readonly trim;
  private readonly bumpDropped;

  constructor(
    db: Db,
    private readonly bootCounter = 0,
  ) {
    this.insert = db.prepare('INSERT INTO events (ts, kind, key, detail, boot) VALUES (?, ?, ?, ?, ?)');
    this.countUnbatched = db.prepare('SELECT count(*) FROM events WHERE batch_seq IS NULL').pluck();
    this.trim = db.prepare('DELETE FROM events WHERE id IN (SELECT id FROM events WHERE batch_seq IS NULL ORDER BY id LIMIT ?)');
    this.bumpDropped = db.prepare(
      "INSERT INTO counters (name, label, value) VALUES ('dropped_events', '', ?) ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value",
    );
  }

  /** Stores one event for the next batch; returns its id. Throws (with the event named) if it breaks §12.5's limits. */
  record(event: AgentEventInput): number {
    const e = validateEvent({ ...event, ts: event.ts ?? Date.now() });
    const id = Number(this.insert.run(e.ts, e.kind, e.key, e.detail ? JSON.stringify(e.detail) : null, this.bootCounter).lastInsertRowid);
    const waiting = this.countUnbatched.get() as number;
    if (waiting > MAX_UNBATCHED_EVENTS) {
      const excess = waiting - MAX_UNBATCHED_EVENTS;
      this.trim.run(excess);
      this.bumpDropped.run(excess);
    }
    return id;
  }
}

/** Events not yet in a batch, oldest first (at most `limit`). */
export function unbatchedEvents(db: Db, limit: number): StoredEvent[] {
  const rows = statement(db, 'SELECT id, ts, kind, key, detail FROM events WHERE batch_seq IS NULL ORDER BY id LIMIT ?').all(limit) as EventRow[];
  return rows.map((r) => ({ id: r.id, ts: r.ts, kind: r.kind, key: r.key, ...(r.detail ? { detail: JSON.parse(r.detail) as StoredEvent['detail'] } : {}) }));
}

/** Marks events as carried by batch `seq` (inside the batch cut's transaction). */
export function markEventsBatched(db: Db, seq: number, firstId: number, lastId: number): void {
  statement(db, 'UPDATE events SET batch_seq = ? WHERE batch_seq IS NULL AND id BETWEEN ? AND ?').run(seq, firstId, lastId);
}
