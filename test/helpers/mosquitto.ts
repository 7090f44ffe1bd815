import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './ports.js';

export interface Broker {
  port: number;
  url: string;
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
  const dir = mkdtempSync(join(tmpdir(), 'ea-mosq-'));
  // Started as root, mosquitto drops to its own user, which must be able to write its persistence file.
  if (opts.persistent) chmodSync(dir, 0o777);
  const conf = join(dir, 'mosquitto.conf');
  const persistence = opts.persistent ? ['persistence true', `persistence_location ${dir}/`] : ['persistence false'];
  const writeConf = (port: number) =>
    writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'max_queued_messages 1000000', 'log_dest stderr', 'log_type error', 'log_type information', ...persistence, ...extraConfig, ''].join('\n'));
  let proc: ChildProcess;
  let port = 0;
  /**
   * mosquitto cannot bind port 0 (it takes "0" for a socket path), so the port is found free first;
   * the fact waited for is mosquitto's own "running" line, which it prints only once its listener is
   * bound. If another process took the port in between, mosquitto exits first and we try another.
   */
  const launch = async (fixedPort?: number) => {
    for (let attempt = 1; ; attempt++) {
      port = fixedPort ?? (await freePort());
      writeConf(port);
      const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
      let log = '';
      const bound = await new Promise<boolean>((resolve) => {
        child.stderr!.on('data', (d: Buffer) => {
          log = (log + d.toString()).slice(-4000);
          if (/mosquitto version \S+ running/.test(log)) resolve(true);
        });
        child.once('exit', () => resolve(false));
      });
      child.stderr!.resume();
      if (bound) {
        proc = child;
        await waitFor(`mosquitto on port ${port}`, () => accepting(port));
        return;
      }
      if (attempt >= 5) throw new Error(`mosquitto did not start on port ${port} after ${attempt} attempts:\n${log}`);
    }
  };
  const stop = () =>
    new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM'); // mosquitto writes its persistence file on SIGTERM
    });
  await launch();
  const broker: Broker = {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    stop,
    restart: async (downMs = 1000) => {
      await stop();
      await new Promise((r) => setTimeout(r, downMs)); // the outage itself: how long sensors and agent see no broker
      await launch(broker.port);
    },
  };
  return broker;
}
