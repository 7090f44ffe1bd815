import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

export const CLI = resolve(import.meta.dirname, '../../dist/agent/cli/main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `edge-agent ARGS...` as a user would, to completion. */
export function cli(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...opts.env }, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface LongRunning {
  proc: ChildProcess;
  output(): string;
  /** Resolves with the first stdout/stderr text matching `re`. */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts a long-running command (run, receive) in the background. */
export function cliBackground(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): LongRunning {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
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
    stop(signal = 'SIGTERM') {
      return new Promise((resolvePromise) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolvePromise(proc.exitCode);
        proc.once('exit', (code) => resolvePromise(code));
        proc.kill(signal);
      });
    },
  };
}
