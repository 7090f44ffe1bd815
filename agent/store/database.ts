import Database from 'better-sqlite3';
import { copyFileSync, existsSync } from 'node:fs';
import { accessSync, constants } from 'node:fs';
import { dirname } from 'node:path';
import { isPermissionError, permissionError } from '../util/file-access.js';
import { AgentError } from '../errors.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';

export type Db = Database.Database;

/**
 * Page size of a new store. Every commit writes each page it touched whole, to the WAL and again at
 * the checkpoint, and at a low rate a commit touches a few rows of several B-trees: smaller pages
 * write less per commit (flash wear, issue 13; docs/performance.md). Existing stores keep theirs.
 */
export const NEW_STORE_PAGE_SIZE = 1024;

/**
 * Opens (creating if needed) the agent's SQLite file: WAL so readers never block the
 * writer, synchronous=FULL so a committed transaction survives a power cut (in WAL mode
 * NORMAL may lose the last commits on power loss, which would break "acked means durable").
 */
export function openDatabase(path: string, options: { readonly?: boolean } = {}): Db {
  const readonly = options.readonly ?? false;
  if (readonly && !existsSync(path)) throw new AgentError('STORE_MISSING', `no store at ${path} yet: the agent has not run on this data dir (edge-agent run)`);
  // SQLite would open a root-owned store "successfully" and fail at the first write as a readonly database.
  const problem = permissionProblem(path, readonly);
  if (problem) throw problem;
  let db: Db;
  try {
    db = new Database(path, { readonly, fileMustExist: readonly });
    db.pragma('busy_timeout = 5000');
    if (!readonly) {
      // A new store can give freed pages back to the file system (store/budget.ts); this must be
      // set before the first table exists. Existing stores keep reusing their free pages instead.
      if ((db.pragma('page_count', { simple: true }) as number) === 0) {
        db.pragma(`page_size = ${NEW_STORE_PAGE_SIZE}`);
        db.pragma('auto_vacuum = INCREMENTAL');
      }
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
    }
  } catch (err) {
    // SQLite says "unable to open database file" / "readonly database" where the file system said EACCES.
    const code = (err as { code?: string }).code ?? '';
    if (/CANTOPEN|READONLY|PERM|AUTH/.test(code) || isPermissionError(err)) {
      const problem = permissionProblem(path, readonly);
      if (problem) throw problem;
    }
    throw new AgentError('STORE_CORRUPT', `cannot open store ${path}: ${(err as Error).message}`, { cause: err });
  }
  // Read-only users (status, verify) skip the check: it reads the whole file, and they may run beside the agent.
  if (!readonly) try {
    const quick = db.pragma('quick_check', { simple: true });
    if (quick !== 'ok') throw new Error(String(quick));
  } catch (err) {
    db.close();
    throw new AgentError('STORE_CORRUPT', `store ${path} failed its integrity check: ${(err as Error).message}`, { cause: err });
  }
  migrate(db, path, readonly);
  return db;
}

/** A permission error when this user cannot read (or write) the store, its -wal/-shm or its directory. */
function permissionProblem(path: string, readonly: boolean): AgentError | undefined {
  const mode = readonly ? constants.R_OK : constants.R_OK | constants.W_OK;
  for (const p of [dirname(path), path, `${path}-wal`, `${path}-shm`]) {
    try {
      accessSync(p, p === dirname(path) ? mode | constants.X_OK : mode);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return permissionError(p, readonly ? 'read' : 'write', dirname(path), err);
    }
  }
  return undefined;
}

function migrate(db: Db, path: string, readonly: boolean): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    db.close();
    throw new AgentError(
      'STORE_NEWER_SCHEMA',
      `store ${path} has schema version ${current}, newer than this agent understands (${SCHEMA_VERSION}); upgrade edge-agent or use another --data-dir`,
    );
  }
  if (current === SCHEMA_VERSION) return;
  if (readonly) {
    db.close();
    throw new AgentError('STORE_CORRUPT', `store ${path} has schema version ${current}; run the agent once to migrate it to ${SCHEMA_VERSION}`);
  }
  if (current > 0) {
    // An existing store is copied before its first migration, so a failed upgrade can be undone by hand.
    db.pragma('wal_checkpoint(TRUNCATE)');
    copyFileSync(path, `${path}.v${current}.bak`);
  }
  for (let v = current; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
