import { closeSync, existsSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { isPermissionError, permissionError } from '../util/file-access.js';
import { AgentError } from '../errors.js';

export const LOCK_FILE = 'agent.lock';

function isLiveAgent(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // After a reboot the pid may belong to something else: only a node process counts.
  const cmdline = `/proc/${pid}/cmdline`;
  return existsSync(cmdline) ? readFileSync(cmdline, 'utf8').includes('node') : true;
}

/**
 * One agent per data dir: two would both cut batches from one store and fork the signed
 * chain. The lock file holds the owner's pid; a lock left by a dead process (power cut,
 * kill -9) is taken over. Returns the release function.
 */
export function acquireDataDirLock(dataDir: string): () => void {
  const path = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
        } catch {
          // already gone: nothing to release
        }
      };
    } catch (err) {
      if (isPermissionError(err)) throw permissionError(path, 'write', dataDir, err);
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(readFileSync(path, 'utf8').trim());
      if (isLiveAgent(owner)) {
        throw new AgentError('LOCKED', `another edge-agent (pid ${owner}) is running on ${dataDir}; stop it first (lock file ${path})`);
      }
      unlinkSync(path); // stale: its owner died without releasing it
    }
  }
  throw new AgentError('LOCKED', `could not take the lock ${path}`);
}
