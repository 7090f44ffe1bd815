import pino, { type Logger } from 'pino';
import { createRequire } from 'node:module';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Structured JSON logs, one event per line on stderr (stdout stays for command output);
 * human-readable when stderr is a terminal. Secrets are redacted by path.
 */
export function createLogger(level: LogLevel = 'info', options: { pretty?: boolean } = {}): Logger {
  const opts = {
    level,
    base: { pid: process.pid },
    redact: { paths: ['*.password', '*.key', '*.secret', 'password', 'privateKey'], censor: '[redacted]' },
  };
  const wantPretty = options.pretty ?? process.stderr.isTTY === true;
  if (wantPretty) {
    // Only terminals need the pretty printer; services and pipes skip loading it.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
    return pino(opts, pretty({ destination: 2, sync: true, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l' }));
  }
  return pino(opts, pino.destination({ dest: 2, sync: true }));
}
