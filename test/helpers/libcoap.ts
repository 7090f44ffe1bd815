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

/**
 * libcoap's example server (Debian libcoap3-bin): /time is observable, /time?ticks notifies a
 * number every second. With `debug`, its log (-v 7: each PDU it sends, with peer address and
 * token) is kept, the last 64 KiB, for `log()`.
 */
export function startLibcoapServer(port: number, opts: { debug?: boolean } = {}): { stop(): Promise<void>; log(): string } {
  const proc: ChildProcess = spawn('coap-server-notls', ['-A', '127.0.0.1', '-p', String(port), ...(opts.debug ? ['-v', '7'] : [])], { stdio: ['ignore', opts.debug ? 'pipe' : 'ignore', opts.debug ? 'pipe' : 'ignore'] });
  let log = '';
  const keep = (d: Buffer) => (log = (log + d.toString()).slice(-65_536));
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  return {
    log: () => log,
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
