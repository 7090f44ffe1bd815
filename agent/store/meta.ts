import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { keyMismatch, restoreHint } from '../identity/key-backup.js';
import type { Db } from './database.js';

export function getMeta(db: Db, key: string): string | undefined {
  return (db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(key) as string | undefined) ?? undefined;
}

export function setMeta(db: Db, key: string, value: string): void {
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
}

/** Counts agent starts. Batches carry it so the network can order readings across reboots of a board without an RTC. */
export function nextBootCounter(db: Db): number {
  return db.transaction(() => {
    const next = Number(getMeta(db, 'boot_counter') ?? '0') + 1;
    setMeta(db, 'boot_counter', String(next));
    return next;
  })();
}

/** Binds a store to one device key: a store signed by one identity must not be continued by another. */
export function bindDevice(db: Db, deviceId: string, path: string, keyPath?: string): void {
  const bound = getMeta(db, 'device_id');
  if (bound === undefined) setMeta(db, 'device_id', deviceId);
  else if (bound !== deviceId) {
    const hint = keyPath ? restoreHint(keyPath) : 'use the matching key file or another --data-dir';
    throw keyMismatch(`store ${path} belongs to device ${bound}, but the key file${keyPath ? ` ${keyPath}` : ''} is ${deviceId}; ${hint}`);
  }
}

/** The device a store is bound to (meta.device_id), read without migrating or locking; undefined when unknown. */
export function storeDevice(storePath: string): string | undefined {
  if (!existsSync(storePath)) return undefined;
  try {
    const db = new Database(storePath, { readonly: true, fileMustExist: true });
    try {
      return (db.prepare("SELECT value FROM meta WHERE key = 'device_id'").pluck().get() as string | undefined) ?? undefined;
    } finally {
      db.close();
    }
  } catch {
    return undefined;
  }
}
