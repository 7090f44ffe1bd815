import type { Db } from './database.js';
import { getMeta, setMeta } from './meta.js';
import { rowToReading } from './reading-store.js';
import type { StoredReading } from '../types.js';

/** One applied version of the model set or the config (docs/updates.md §6). */
export interface AppliedVersion {
  id: string;
  version: string;
  applied_at: number;
  /** Model sets: the staged directory holding manifest.json and its files. */
  dir?: string;
}

/** What `status` shows and what a restart resumes: the running and the previous version of each kind, the last outcome. */
export interface UpdateState {
  models?: { current: AppliedVersion; previous?: AppliedVersion | null };
  config?: { current: AppliedVersion; previous?: AppliedVersion | null };
  last?: { id: string; version: string; kind: string; outcome: 'applied' | 'refused' | 'rolled_back'; reason?: string; at: number };
  /** An apply whose health is being watched (survives a restart, so a crash loop still rolls back). */
  watching?: { id: string; version: string; kind: string; deadline_at: number } | null;
  /** Bundle ids already handled (applied, refused or rolled back), newest last: a receiver that offers one again is ignored. */
  seen: string[];
}

const KEY = 'update_state';
const SEEN_KEPT = 100;

export function readUpdateState(db: Db): UpdateState {
  const text = getMeta(db, KEY);
  return text ? (JSON.parse(text) as UpdateState) : { seen: [] };
}

export function writeUpdateState(db: Db, state: UpdateState): void {
  setMeta(db, KEY, JSON.stringify({ ...state, seen: state.seen.slice(-SEEN_KEPT) }));
}

/** The newest `limit` readings, oldest first: what a new model set is run over in shadow. */
export function recentReadings(db: Db, limit: number): StoredReading[] {
  const rows = db
    .prepare('SELECT * FROM (SELECT id, sensor, ts, time_source, value, unit, seq, source, boot, flags FROM readings ORDER BY id DESC LIMIT ?) ORDER BY id')
    .all(limit) as Parameters<typeof rowToReading>[0][];
  return rows.map(rowToReading);
}
