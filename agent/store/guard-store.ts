import type { Db } from './database.js';

/** Rows kept in each of the guard's tables (quarantines with the last released ones, maintenance windows, serial devices' sessions): its bounded share of the store (store/budget-shares.ts). */
export const GUARD_ROWS_MAX = 256;
/** Boot sessions remembered per serial device (replay detection, guard/seq-check.ts). */
export const SESSIONS_PER_DEVICE = 16;
/** Finished operator requests kept for the CLI to read its result. */
export const GUARD_REQUESTS_KEPT = 64;

export interface QuarantineRow {
  key: string;
  reason: string;
  since: number;
  lastAbnormal: number;
  kept: number;
  dropped: number;
  releasedAt: number | null;
  releasedBy: string | null;
}

export interface MaintenanceRow {
  target: string;
  since: number;
  until: number | null;
  by: string;
}

export type GuardAction = 'quarantine_release' | 'maintenance_start' | 'maintenance_stop';

export interface GuardRequest {
  id: number;
  action: GuardAction;
  target: string;
  until: number | null;
  requestedAt: number;
}

interface QRow {
  key: string;
  reason: string;
  since: number;
  last_abnormal: number;
  kept: number;
  dropped: number;
  released_at: number | null;
  released_by: string | null;
}

const fromQRow = (r: QRow): QuarantineRow => ({
  key: r.key,
  reason: r.reason,
  since: r.since,
  lastAbnormal: r.last_abnormal,
  kept: r.kept,
  dropped: r.dropped,
  releasedAt: r.released_at,
  releasedBy: r.released_by,
});

/**
 * The guard stage's persistent state (agent/guard/): which keys are quarantined since when and
 * why, with what they kept and dropped; maintenance windows; the boot sessions seen per serial
 * device (so a replay is caught across a restart); and operator requests, written by
 * the CLI whether or not the agent runs (as `models relearn` does, store/relearn-store.ts).
 */
export class GuardStore {
  private readonly q;

  constructor(private readonly db: Db) {
    this.q = {
      active: db.prepare('SELECT * FROM guard_quarantine WHERE released_at IS NULL ORDER BY since'),
      all: db.prepare('SELECT * FROM guard_quarantine ORDER BY released_at IS NOT NULL, since DESC LIMIT ?'),
      start: db.prepare(
        `INSERT INTO guard_quarantine (key, reason, since, last_abnormal, kept, dropped) VALUES (?, ?, ?, ?, 0, 0)
         ON CONFLICT (key) DO UPDATE SET reason = excluded.reason, since = excluded.since, last_abnormal = excluded.last_abnormal,
           kept = 0, dropped = 0, released_at = NULL, released_by = NULL`,
      ),
      counts: db.prepare('UPDATE guard_quarantine SET kept = ?, dropped = ?, last_abnormal = ? WHERE key = ? AND released_at IS NULL'),
      release: db.prepare('UPDATE guard_quarantine SET released_at = ?, released_by = ? WHERE key = ? AND released_at IS NULL'),
      trimReleased: db.prepare(
        'DELETE FROM guard_quarantine WHERE key IN (SELECT key FROM guard_quarantine WHERE released_at IS NOT NULL ORDER BY released_at DESC LIMIT -1 OFFSET ?)',
      ),
      maintActive: db.prepare('SELECT target, since, until, by FROM guard_maintenance ORDER BY since'),
      maintStart: db.prepare(
        'INSERT INTO guard_maintenance (target, since, until, by) VALUES (?, ?, ?, ?) ON CONFLICT (target) DO UPDATE SET until = excluded.until, by = excluded.by',
      ),
      maintStop: db.prepare('DELETE FROM guard_maintenance WHERE target = ?'),
      maintCount: db.prepare('SELECT count(*) FROM guard_maintenance').pluck(),
      request: db.prepare('INSERT INTO guard_requests (action, target, until, requested_at) VALUES (?, ?, ?, ?)'),
      pending: db.prepare('SELECT id, action, target, until, requested_at FROM guard_requests WHERE done_at IS NULL ORDER BY id LIMIT 100'),
      done: db.prepare('UPDATE guard_requests SET done_at = ?, result = ? WHERE id = ?'),
      requestById: db.prepare('SELECT done_at, result FROM guard_requests WHERE id = ?'),
      trimRequests: db.prepare('DELETE FROM guard_requests WHERE done_at IS NOT NULL AND id NOT IN (SELECT id FROM guard_requests ORDER BY id DESC LIMIT ?)'),
      sessions: db.prepare('SELECT device, sessions FROM guard_serial_sessions ORDER BY seen_at DESC LIMIT ?'),
      saveSessions: db.prepare(
        'INSERT INTO guard_serial_sessions (device, sessions, seen_at) VALUES (?, ?, ?) ON CONFLICT (device) DO UPDATE SET sessions = excluded.sessions, seen_at = excluded.seen_at',
      ),
      trimSessions: db.prepare('DELETE FROM guard_serial_sessions WHERE device IN (SELECT device FROM guard_serial_sessions ORDER BY seen_at DESC LIMIT -1 OFFSET ?)'),
      known: db.prepare('SELECT DISTINCT source, sensor FROM (SELECT source, sensor FROM readings ORDER BY id DESC LIMIT ?)'),
    };
  }

  activeQuarantines(): QuarantineRow[] {
    return (this.q.active.all() as QRow[]).map(fromQRow);
  }

  /** Active quarantines first, then the most recently released (at most `limit`). */
  listQuarantines(limit = GUARD_ROWS_MAX): QuarantineRow[] {
    return (this.q.all.all(limit) as QRow[]).map(fromQRow);
  }

  startQuarantine(key: string, reason: string, since: number): void {
    this.q.start.run(key, reason, since, since);
  }

  saveQuarantineCounts(rows: readonly Pick<QuarantineRow, 'key' | 'kept' | 'dropped' | 'lastAbnormal'>[]): void {
    if (rows.length === 0) return;
    this.db.transaction(() => {
      for (const r of rows) this.q.counts.run(r.kept, r.dropped, r.lastAbnormal, r.key);
    })();
  }

  /** Returns whether the key was quarantined. Released rows beyond GUARD_ROWS_MAX are forgotten, oldest first. */
  releaseQuarantine(key: string, at: number, by: string): boolean {
    const changed = this.q.release.run(at, by, key).changes > 0;
    this.q.trimReleased.run(GUARD_ROWS_MAX);
    return changed;
  }

  maintenance(): MaintenanceRow[] {
    return this.q.maintActive.all() as MaintenanceRow[];
  }

  /** False when GUARD_ROWS_MAX windows are open already (and this target is not one of them). */
  startMaintenance(target: string, since: number, until: number | null, by: string): boolean {
    const open = this.maintenance().some((m) => m.target === target);
    if (!open && (this.q.maintCount.get() as number) >= GUARD_ROWS_MAX) return false;
    this.q.maintStart.run(target, since, until, by);
    return true;
  }

  stopMaintenance(target: string): boolean {
    return this.q.maintStop.run(target).changes > 0;
  }

  request(action: GuardAction, target: string, until: number | null = null, now = Date.now()): number {
    const id = Number(this.q.request.run(action, target, until, now).lastInsertRowid);
    this.q.trimRequests.run(GUARD_REQUESTS_KEPT);
    return id;
  }

  pendingRequests(): GuardRequest[] {
    return (this.q.pending.all() as { id: number; action: GuardAction; target: string; until: number | null; requested_at: number }[]).map((r) => ({
      id: r.id,
      action: r.action,
      target: r.target,
      until: r.until,
      requestedAt: r.requested_at,
    }));
  }

  finishRequest(id: number, result: string, now = Date.now()): void {
    this.q.done.run(now, result.slice(0, 512), id);
  }

  /** What became of a request: undefined while pending. */
  requestResult(id: number): string | undefined {
    const row = this.q.requestById.get(id) as { done_at: number | null; result: string | null } | undefined;
    return row?.done_at ? (row.result ?? '') : undefined;
  }

  /** The boot sessions seen per serial device, oldest first, of the GUARD_ROWS_MAX devices seen last (a row that does not parse is skipped). */
  serialSessions(): Map<string, number[]> {
    const out = new Map<string, number[]>();
    for (const r of this.q.sessions.all(GUARD_ROWS_MAX) as { device: string; sessions: string }[]) {
      let list: unknown;
      try {
        list = JSON.parse(r.sessions);
      } catch {
        continue; // written by this class only; a damaged row is forgotten, as a device not seen yet
      }
      if (Array.isArray(list) && list.every((n) => Number.isSafeInteger(n))) out.set(r.device, (list as number[]).slice(-SESSIONS_PER_DEVICE));
    }
    return out;
  }

  /** Saves a device's sessions (the newest SESSIONS_PER_DEVICE); devices beyond GUARD_ROWS_MAX are forgotten, least recently seen first. */
  saveSerialSessions(device: string, sessions: readonly number[], now: number): void {
    this.q.saveSessions.run(device, JSON.stringify(sessions.slice(-SESSIONS_PER_DEVICE)), now);
    this.q.trimSessions.run(GUARD_ROWS_MAX);
  }

  /** (source, sensor) pairs of the newest `limit` readings: the sensors a restarted guard already knows. */
  recentSensors(limit: number): { source: string; sensor: string }[] {
    return this.q.known.all(limit) as { source: string; sensor: string }[];
  }
}
