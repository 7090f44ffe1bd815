import type { Statement } from 'better-sqlite3';
import type { Db } from './database.js';

const byDb = new WeakMap<Db, Map<string, Statement>>();

/**
 * `db.prepare(sql)`, prepared once per connection: the batch cut runs several small queries each
 * time, and preparing them anew took ~10 % of a cut (CPU profile at 5,000 readings/s, issue 13).
 * A statement keeps the mode a caller set (`pluck()`), so each SQL text is used in one mode.
 */
export function statement(db: Db, sql: string): Statement {
  let cache = byDb.get(db);
  if (!cache) {
    cache = new Map();
    byDb.set(db, cache);
  }
  let stmt = cache.get(sql);
  if (!stmt) {
    stmt = db.prepare(sql);
    cache.set(sql, stmt);
  }
  return stmt;
}
