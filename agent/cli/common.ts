import { Option } from 'commander';
import { resolve } from 'node:path';
import { AgentError } from '../errors.js';
import { LOG_LEVELS, type Logger, type LogLevel } from '../log.js';

export const DEFAULT_DATA_DIR = process.env.EDGE_AGENT_DATA_DIR ?? './edge-agent-data';

export function dataDirOption(): Option {
  return new Option('-d, --data-dir <dir>', 'directory holding the config, the device key and the store').default(DEFAULT_DATA_DIR);
}

export function absDir(dir: string): string {
  return resolve(dir);
}

/** Parses HOST:PORT, [IPv6]:PORT; a usage error names the flag. */
export function parseHostPort(value: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new AgentError('USAGE', `${flag}: expected HOST:PORT or [IPv6]:PORT, got "${value}"`);
  return { host: (m[1] ?? m[2])!, port };
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** RFC 3339 (people) or ms since the epoch (programs), for a commander option parser. */
export const timeArg = (flag: string) => (v: string) => {
  const ms = /^-?\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isSafeInteger(ms)) throw new AgentError('USAGE', `${flag}: expected an RFC 3339 time (2026-12-01T09:00:00Z) or ms since the epoch, got "${v}"`);
  return ms;
};

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function isoTime(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '-' : new Date(ms).toISOString();
}

/**
 * Resolves once `stop` has finished after SIGINT or SIGTERM. A second signal exits at once:
 * what was committed is safe, and an operator pressing Ctrl-C twice means it.
 */
export function stopOnSignal(log: Logger, what: string, stop: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, `second signal: exiting without waiting for the ${what} (committed data is safe)`);
        process.exit(1);
      }
      stopping = true;
      log.info({ signal }, `stopping ${what}`);
      stop().then(resolve, (err: unknown) => {
        log.error({ err }, `error while stopping the ${what}`);
        process.exitCode = 1;
        resolve();
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

export function parseLogLevel(value: string | undefined): LogLevel | undefined {
  if (value === undefined) return undefined;
  if (!(LOG_LEVELS as readonly string[]).includes(value)) throw new AgentError('USAGE', `--log-level: expected one of ${LOG_LEVELS.join(', ')}, got "${value}"`);
  return value as LogLevel;
}
