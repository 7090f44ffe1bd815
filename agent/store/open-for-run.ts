import { AgentError } from '../errors.js';
import type { Logger } from '../log.js';
import { isStoreFull } from '../util/repeated-log.js';
import { openDatabase, type Db } from './database.js';
import { START_SLICE_BYTES, type DiskReserve } from './disk-reserve.js';
import { bindDevice, nextBootCounter } from './meta.js';

/**
 * Opens the store for `run` and counts the boot. On a full disk the boot counter write (and
 * the WAL and shared-memory files of the open) need room: the ballast gives a small slice back,
 * then all of it, so an agent that died on a full disk starts again; the budget then frees space
 * and writes the ballast back. Only a disk full with no ballast left stops the start, with what to do.
 */
export function openStoreForRun(path: string, deviceId: string, keyFile: string, reserve: DiskReserve, log: Logger): { db: Db; bootCounter: number } {
  const slices = [START_SLICE_BYTES, Infinity];
  for (let attempt = 0; ; attempt++) {
    let db: Db | undefined;
    try {
      db = openDatabase(path);
      bindDevice(db, deviceId, path, keyFile);
      return { db, bootCounter: nextBootCounter(db) };
    } catch (err) {
      db?.close();
      if (!isStoreFull(err)) throw err;
      const slice = slices[attempt];
      if (slice === undefined || reserve.release(slice, 'disk full at start-up') === 0) {
        throw new AgentError(
          'STORE_FULL',
          `the disk holding ${path} is full and the disk reserve (${reserve.path}) is used up: free some space on that file system (or grow it); the agent then drops the oldest unbatched readings itself`,
          { cause: err },
        );
      }
      log.warn({ attempt: attempt + 1 }, 'disk full at start-up: retrying with room from the disk reserve');
    }
  }
}
