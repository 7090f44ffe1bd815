import type { Db } from './database.js';

export type RelearnSelector = 'sensor' | 'asset' | 'all';

export interface RelearnRequest {
  id: number;
  selector: RelearnSelector;
  /** The sensor id or asset id; '' for all. */
  target: string;
  requestedAt: number;
}

interface RequestRow {
  id: number;
  selector: RelearnSelector;
  target: string;
  requested_at: number;
}

/** Done requests kept (the newest), so `models relearn --json` can read its result; older ones are deleted. */
export const RELEARN_REQUESTS_KEPT = 64;

/**
 * Operator requests that series start a fresh baseline (`edge-agent models relearn`). A request
 * is a row, so it works whether the agent is running (its inference stage polls) or not (the
 * stage applies it at the next start).
 */
export class RelearnStore {
  private readonly insert;
  private readonly pendingRows;
  private readonly finish;
  private readonly forget;
  private readonly trimDone;

  constructor(private readonly db: Db) {
    this.forget = db.prepare('DELETE FROM inference_state WHERE binding = ? AND key = ?');
    this.insert = db.prepare('INSERT INTO relearn_requests (selector, target, requested_at) VALUES (?, ?, ?)');
    this.pendingRows = db.prepare('SELECT id, selector, target, requested_at FROM relearn_requests WHERE done_at IS NULL ORDER BY id');
    this.finish = db.prepare('UPDATE relearn_requests SET done_at = ?, matched = ? WHERE id = ?');
    this.trimDone = db.prepare('DELETE FROM relearn_requests WHERE done_at IS NOT NULL AND id NOT IN (SELECT id FROM relearn_requests ORDER BY id DESC LIMIT ?)');
  }

  /** Runs `fn` in one transaction: a series' reset, its event and the request's completion together. */
  atomically<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  request(selector: RelearnSelector, target: string, now = Date.now()): number {
    return Number(this.insert.run(selector, selector === 'all' ? '' : target, now).lastInsertRowid);
  }

  pending(): RelearnRequest[] {
    return (this.pendingRows.all() as RequestRow[]).map((r) => ({ id: r.id, selector: r.selector, target: r.target, requestedAt: r.requested_at }));
  }

  markDone(id: number, matched: number, now = Date.now()): void {
    this.finish.run(now, matched, id);
    this.trimDone.run(RELEARN_REQUESTS_KEPT);
  }

  /** Deletes a series' saved state, so a restart does not bring the old baseline back. */
  forgetState(binding: string, key: string): void {
    this.forget.run(binding, key);
  }
}

/** Whether a series key is what a request names: the sensor itself, an asset or any sensor of it ("pump1/..."), or all. */
export function relearnMatches(req: Pick<RelearnRequest, 'selector' | 'target'>, key: string): boolean {
  if (req.selector === 'all') return true;
  if (req.selector === 'sensor') return key === req.target;
  return key === req.target || key.startsWith(`${req.target}/`);
}
