import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { join } from 'node:path';
import { permissionError, runningUser } from '../../config/file-access.js';
import { errorMessage } from '../../errors.js';
import { deviceIdFromPublicKey, publicKeyFromDeviceId } from '../../identity/device-id.js';
import { LOCK_FILE } from '../../store/lock.js';
import { fail, pass, skip, warn, type CheckResult } from './types.js';

/**
 * Doctor checks of what the agent needs on this machine and from its receiver (issue 12): the data
 * dir and store writable by the user the agent runs as, every UDP listen port free or the running
 * agent's, and the receiver's published key equal to `receiver_key`.
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

/** The pid of a live agent holding the data dir's lock, if any. */
function runningAgent(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, LOCK_FILE), 'utf8').trim());
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** A CoAP listen address: free for the agent, or held by the agent running on this data dir. */
export function checkUdpListen(sourceId: string, host: string, port: number, dataDir: string): Promise<CheckResult> {
  const shown = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const subject = `sources.${sourceId}.listen`;
  return new Promise((resolve) => {
    const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.close();
      if (err.code === 'EADDRINUSE') {
        const pid = runningAgent(dataDir);
        if (pid !== undefined) return resolve(pass('coap', subject, `udp ${shown} is held by the running agent (pid ${pid})`));
        return resolve(fail('coap', subject, `udp ${shown} is taken by another program, and no agent runs on this data dir`, `find it (ss -lunp | grep ':${port} ') and stop it, or choose another port in ${subject}`));
      }
      if (err.code === 'EADDRNOTAVAIL') return resolve(fail('coap', subject, `${host} is not an address of this machine`, `set ${subject} to one of its addresses (ip -brief address)`));
      resolve(fail('coap', subject, `cannot listen on udp ${shown}: ${errorMessage(err)}`, `choose another port in ${subject} (above 1023 without privileges)`));
    });
    socket.bind(port, host, () => socket.close(() => resolve(pass('coap', subject, `udp ${shown} is free for the CoAP endpoint (the agent is not running)`))));
  });
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
