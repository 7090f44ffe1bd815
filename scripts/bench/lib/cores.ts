import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

/**
 * Core pinning for the headline figures (gateways are small): the agent gets core 0 alone,
 * the broker, publishers, receiver and this harness share core 1. Without taskset or with a
 * single core, nothing is pinned and the summary says so.
 */
export const canPin = availableParallelism() >= 2 && spawnSync('taskset', ['-V']).status === 0;

/** The command line to run `cmd args` on `core` (unchanged when pinning is not possible). */
export function pinned(core: number, cmd: string, args: string[]): [string, string[]] {
  return canPin ? ['taskset', ['-c', String(core), cmd, ...args]] : [cmd, args];
}

/** Moves this process (all its threads) to `core`. */
export function pinSelf(core: number): void {
  if (canPin) spawnSync('taskset', ['-a', '-p', '-c', String(core), String(process.pid)], { stdio: 'ignore' });
}
