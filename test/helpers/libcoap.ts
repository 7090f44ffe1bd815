import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';

/** A free UDP port on loopback (bound then released). */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

/** libcoap's example server (Debian libcoap3-bin): /time is observable, /time?ticks notifies a number every second. */
export function startLibcoapServer(port: number): { stop(): Promise<void> } {
  const proc: ChildProcess = spawn('coap-server-notls', ['-A', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

/** libcoap's coap-client; it exits 0 whatever the response code, so the response text is returned. */
export function coapClient(args: string[]): string {
  const r = spawnSync('coap-client-notls', args, { encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  return `${r.stdout}${r.stderr}`;
}
