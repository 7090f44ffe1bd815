import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import type { ReadyReport } from '../../agent/run/agent.js';

export const CLI = resolve(import.meta.dirname, '../../dist/agent/cli/main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `init` without an http flag would write the default 127.0.0.1:9464, which every agent of a test
 * run (and of a second run side by side) would then fight over: tests get port 0 instead, bound by
 * the agent itself and reported on its ready line.
 */
function withOwnHttpPort(args: string[]): string[] {
  if (args[0] !== 'init' || args.some((a) => a === '--no-http' || a.startsWith('--http-listen'))) return args;
  return [...args, '--http-listen', '127.0.0.1:0'];
}

/** Runs `edge-agent ARGS...` as a user would, to completion. */
export function cli(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...withOwnHttpPort(args)], { encoding: 'utf8', env: { ...process.env, ...opts.env }, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface LongRunning {
  proc: ChildProcess;
  output(): string;
  /** Resolves with the first stdout/stderr text matching `re`. */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /**
   * `run` only: resolves with the agent's ready line (`--ready-fd 3`, added by cliBackground) once
   * every source takes input: a fact the agent states, not log text; fails with the output after `timeoutMs`.
   */
  waitForReady(timeoutMs?: number): Promise<ReadyReport>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts a long-running command (run, receive) in the background; `run` reports readiness on fd 3. */
export function cliBackground(args: string[], opts: { env?: NodeJS.ProcessEnv; execArgv?: string[] } = {}): LongRunning {
  const readyFd = args[0] === 'run' && !args.includes('--ready-fd');
  const proc = spawn(process.execPath, [...(opts.execArgv ?? []), CLI, ...args, ...(readyFd ? ['--ready-fd', '3'] : [])], {
    stdio: ['ignore', 'pipe', 'pipe', readyFd ? 'pipe' : 'ignore'],
    env: { ...process.env, ...opts.env },
  });
  let readyText = '';
  const ready = new Promise<ReadyReport>((resolveReady, rejectReady) => {
    const stream = proc.stdio[3] as NodeJS.ReadableStream | null;
    if (!stream) return rejectReady(new Error('not started with --ready-fd by cliBackground'));
    stream.on('data', (d: Buffer) => {
      readyText += d.toString();
      const line = readyText.split('\n')[0];
      if (readyText.includes('\n') && line) resolveReady(JSON.parse(line) as ReadyReport);
    });
    stream.on('error', () => undefined);
  });
  ready.catch(() => undefined);
  let out = '';
  const waiters: (() => void)[] = [];
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.splice(0)) w();
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  return {
    proc,
    output: () => out,
    waitForOutput(re, timeoutMs = 20_000) {
      return new Promise((resolvePromise, reject) => {
        const timer = setTimeout(() => reject(new Error(`no output matching ${re} within ${timeoutMs} ms; output so far:\n${out}`)), timeoutMs);
        const check = () => {
          const m = out.match(re);
          if (m) {
            clearTimeout(timer);
            resolvePromise(m);
          } else if (proc.exitCode !== null) {
            clearTimeout(timer);
            reject(new Error(`process exited (${proc.exitCode}) before output matched ${re}:\n${out}`));
          } else waiters.push(check);
        };
        check();
      });
    },
    waitForReady(timeoutMs = 20_000) {
      return new Promise((resolvePromise, reject) => {
        const timer = setTimeout(() => reject(new Error(`agent not ready within ${timeoutMs} ms; output so far:\n${out}`)), timeoutMs);
        const exited = () => {
          clearTimeout(timer);
          reject(new Error(`process exited (${proc.exitCode ?? proc.signalCode}) before it was ready:\n${out}`));
        };
        if (proc.exitCode !== null || proc.signalCode !== null) return exited();
        proc.once('exit', exited);
        ready.then(
          (r) => {
            clearTimeout(timer);
            proc.off('exit', exited);
            resolvePromise(r);
          },
          (err: unknown) => {
            clearTimeout(timer);
            reject(err as Error);
          },
        );
      });
    },
    stop(signal = 'SIGTERM') {
      return new Promise((resolvePromise) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolvePromise(proc.exitCode);
        proc.once('exit', (code) => resolvePromise(code));
        proc.kill(signal);
      });
    },
  };
}
