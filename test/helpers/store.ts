import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ClockStatus } from '../../agent/clock/clock-status.js';
import { GroupCommitWriter } from '../../agent/pipeline/group-commit.js';
import type { SourceContext } from '../../agent/sources/source.js';
import { openDatabase } from '../../agent/store/database.js';
import { ReadingStore } from '../../agent/store/reading-store.js';

/** Counts the transactions a store commits: how well submissions were grouped. */
export function countCommits(store: ReadingStore): { readonly count: number } {
  const counter = { count: 0 };
  const commit = store.commit.bind(store);
  store.commit = (subs, receivedAt) => {
    counter.count++;
    return commit(subs, receivedAt);
  };
  return counter;
}

/** A new store in a temp dir, with the writer sources submit to. */
export function freshStore(name: string) {
  const db = openDatabase(join(mkdtempSync(join(tmpdir(), `ea-${name}-`)), 'edge-agent.db'));
  const store = new ReadingStore(db, 1);
  return { db, store, writer: new GroupCommitWriter(store) };
}

/** What a source gets from the agent: the writer, a clock taken as synchronised, a silent logger. */
export function sourceContext(id: string, writer: GroupCommitWriter): SourceContext {
  return { id, sink: writer, clock: new ClockStatus('always'), log: pino({ level: 'silent' }), resolvePath: (p) => p, cursors: () => new Map() };
}
