import { accessSync, constants, existsSync } from 'node:fs';
import { join } from 'node:path';
import { permissionError, runningUser } from '../../util/file-access.js';
import { errorMessage } from '../../errors.js';
import { deviceIdFromPublicKey, publicKeyFromDeviceId } from '../../identity/device-id.js';
import { LOCK_FILE } from '../../store/lock.js';
import { fail, pass, skip, warn, type CheckResult } from '../../contracts/doctor-check.js';

/**
 * Doctor checks of what the agent needs on this machine and from its receiver (issue 12): the data
 * dir and store writable by the user the agent runs as, and the receiver's published key equal to
 * `receiver_key`. (A CoAP listen port: sources/coap-server/doctor-check.ts.)
 */

const writable = (p: string, dir = false) => {
  try {
    accessSync(p, constants.R_OK | constants.W_OK | (dir ? constants.X_OK : 0));
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
};

export function checkDataDir(dataDir: string, storePath: string): CheckResult {
  const user = runningUser().text;
  const paths: [string, boolean][] = [[dataDir, true], [storePath, false], [`${storePath}-wal`, false], [`${storePath}-shm`, false], [join(dataDir, LOCK_FILE), false]];
  for (const [p, dir] of paths) {
    if (!writable(p, dir)) {
      const err = permissionError(p, 'write', dataDir);
      const [detail, fix] = err.message.split('. Fix: ');
      return fail('data-dir', p, `not writable by ${user}: ${detail}`, fix ?? 'give the agent\'s user write access');
    }
  }
  return pass('data-dir', dataDir, `the data dir${existsSync(storePath) ? ' and the store' : ''} are writable by ${user}`);
}

/** GET /v1/receiver next to the uplink URL (wire-format.md §7) must publish the configured receiver_key. */
export async function checkReceiverKey(uplinkUrl: string, receiverKey: string | undefined, timeoutMs: number): Promise<CheckResult> {
  if (!receiverKey) return skip('receiver-key', uplinkUrl, 'no uplink.receiver_key: deliveries are not checked against receipts');
  let expected: string;
  try {
    expected = deviceIdFromPublicKey(publicKeyFromDeviceId(receiverKey));
  } catch (err) {
    return fail('receiver-key', 'uplink.receiver_key', errorMessage(err), 'set uplink.receiver_key to the did:key the receiver prints at start (GET /v1/receiver)');
  }
  const url = new URL('/v1/receiver', uplinkUrl).href;
  let published: unknown;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (res.status === 404) return warn('receiver-key', url, 'the receiver does not publish its key (404), so uplink.receiver_key could not be compared', 'compare uplink.receiver_key with the key the receiver prints at start');
    published = ((await res.json()) as { public_key?: unknown }).public_key;
  } catch (err) {
    return warn('receiver-key', url, `could not ask the receiver for its key: ${errorMessage(err)}`, 'see the uplink check; run doctor again once the receiver answers');
  }
  if (typeof published !== 'string') return warn('receiver-key', url, 'the answer holds no public_key', 'compare uplink.receiver_key with the key the receiver prints at start');
  let publishedId: string;
  try {
    publishedId = deviceIdFromPublicKey(publicKeyFromDeviceId(published));
  } catch (err) {
    return fail('receiver-key', url, `the receiver publishes an unusable key: ${errorMessage(err)}`, 'check that uplink.url points at an edge-agent receiver');
  }
  if (publishedId !== expected) {
    return fail('receiver-key', url, `the receiver's key is ${publishedId}, but uplink.receiver_key is ${expected}: every receipt would be refused and nothing counts as delivered`, `set uplink.receiver_key: ${publishedId} (if this is the receiver you mean to use)`);
  }
  return pass('receiver-key', url, `the receiver publishes ${publishedId}, as configured`);
}
