import { copyFileSync, existsSync, readdirSync, renameSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { AgentError } from '../errors.js';

/**
 * The device key is the gateway's identity and the signer of its chain: it is never deleted.
 * A key that `init --force` or `keys restore` replaces is kept beside it as
 * `<key file>.replaced-<UTC time>`, and `edge-agent keys restore FILE` puts one back.
 */

const stamp = (now: Date) => now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');

/** Renames the key at `keyPath` to `<keyPath>.replaced-<time>` and returns that name; undefined when there is none. */
export function setKeyAside(keyPath: string, now = new Date()): string | undefined {
  if (!existsSync(keyPath)) return undefined;
  let target = `${keyPath}.replaced-${stamp(now)}`;
  for (let n = 2; existsSync(target); n++) target = `${keyPath}.replaced-${stamp(now)}-${n}`;
  renameSync(keyPath, target);
  return target;
}

/** Keeps a copy (same name scheme) without moving the key: for `keys restore` of the current file. */
export function copyKeyAside(keyPath: string, now = new Date()): string {
  let target = `${keyPath}.replaced-${stamp(now)}`;
  for (let n = 2; existsSync(target); n++) target = `${keyPath}.replaced-${stamp(now)}-${n}`;
  copyFileSync(keyPath, target);
  return target;
}

/** Keys set aside beside `keyPath`, oldest first. */
export function replacedKeys(keyPath: string): string[] {
  const dir = dirname(keyPath);
  const prefix = `${basename(keyPath)}.replaced-`;
  try {
    return readdirSync(dir)
      .filter((f) => f.startsWith(prefix))
      .sort()
      .map((f) => join(dir, f));
  } catch {
    return [];
  }
}

/** The hint added to "store belongs to another device": where the key it needs may be. */
export function restoreHint(keyPath: string): string {
  const kept = replacedKeys(keyPath);
  if (kept.length === 0) return 'use the matching key file or another --data-dir';
  return `the key it was made with may be one set aside by init --force: ${kept.join(', ')}; put it back with: edge-agent keys restore --data-dir ${dirname(keyPath)} ${kept[kept.length - 1]}`;
}

export function keyMismatch(message: string): AgentError {
  return new AgentError('KEY_MISMATCH', message, { exitCode: 2 });
}
