import Database from 'better-sqlite3';

/** The rows of one query against a SQLite file (the agent's or the receiver's store), opened read-only for that query alone. */
export function query<T>(file: string, sql: string, ...args: unknown[]): T[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(sql).all(...args) as T[];
  } finally {
    db.close();
  }
}
