import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { waitFor } from './ports.js';

const FIRMWARE_BRIDGE = resolve(import.meta.dirname, '../../firmware-bridge');

/**
 * Builds the firmware library's host tools (g++, -Werror). Test files run two at a time and
 * several build the tools first: on a fresh clone two makes would write the same binary while a
 * third file runs it, so the build holds a lock (flock, util-linux) for its whole run.
 */
export function buildFirmwareTools(): void {
  execFileSync('flock', [join(FIRMWARE_BRIDGE, '.build.lock'), 'make', '-s', '-C', FIRMWARE_BRIDGE]);
}

/** A pty pair from socat: `device` for the simulated board, `gateway` for the agent. */
export async function startPtyPair(dir: string): Promise<{ device: string; gateway: string; stop(): Promise<void> }> {
  const device = join(dir, 'dev');
  const gateway = join(dir, 'gw');
  const proc: ChildProcess = spawn('socat', [`pty,raw,echo=0,link=${device}`, `pty,raw,echo=0,link=${gateway}`], { stdio: 'ignore' });
  await waitFor('socat ptys', () => existsSync(device) && existsSync(gateway));
  return {
    device,
    gateway,
    stop: () =>
      new Promise<void>((r) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return r();
        proc.once('exit', () => r());
        proc.kill('SIGTERM');
      }),
  };
}

export interface Simulator {
  output(): string;
  exited: Promise<number | null>;
  kill(): void;
}

/** The g++-built firmware simulator playing a sensor board on `path`. */
export function startSimulator(args: string[]): Simulator {
  const proc = spawn(join(FIRMWARE_BRIDGE, 'build/simulator'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return {
    output: () => out,
    exited: new Promise((r) => proc.once('exit', (code) => r(code))),
    kill: () => proc.kill('SIGKILL'),
  };
}
