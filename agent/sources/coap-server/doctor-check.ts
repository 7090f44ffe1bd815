import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { join } from 'node:path';
import { fail, pass, type CheckResult } from '../../contracts/doctor-check.js';
import { errorMessage } from '../../errors.js';
import { LOCK_FILE } from '../../store/lock.js';

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

