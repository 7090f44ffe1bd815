import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './ports.js';

export interface Broker {
  port: number;
  url: string;
  /** The broker's mosquitto.conf (for doctor --broker-config). */
  conf: string;
  stop(): Promise<void>;
  /** Stops and starts the broker on the same port (with `persistent`, sessions and queues survive). */
  restart(downMs?: number): Promise<void>;
}

function accepting(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/**
 * A real mosquitto on a free loopback port, with its own config. The default queue of 1000
 * messages per offline session would drop QoS 1 messages while an agent is down in the
 * crash tests, so it is raised (deployments need the same: see README, "Broker settings").
 */
export async function startMosquitto(extraConfig: string[] = [], opts: { persistent?: boolean } = {}): Promise<Broker> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ea-mosq-'));
  // Started as root, mosquitto drops to its own user, which must be able to write its persistence file.
  if (opts.persistent) chmodSync(dir, 0o777);
  const conf = join(dir, 'mosquitto.conf');
  const persistence = opts.persistent ? ['persistence true', `persistence_location ${dir}/`] : ['persistence false'];
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'max_queued_messages 1000000', ...persistence, ...extraConfig, ''].join('\n'));
  let proc: ChildProcess;
  const launch = async () => {
    proc = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
    await waitFor(`mosquitto on port ${port}`, () => accepting(port));
  };
  const stop = () =>
    new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM'); // mosquitto writes its persistence file on SIGTERM
    });
  await launch();
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    conf,
    stop,
    restart: async (downMs = 1000) => {
      await stop();
      await new Promise((r) => setTimeout(r, downMs));
      await launch();
    },
  };
}
