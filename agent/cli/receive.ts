import type { Command } from 'commander';
import { AgentError, errorMessage } from '../errors.js';
import { deviceIdFromPublicKey } from '../identity/device-id.js';
import { createLogger, type LogLevel } from '../log.js';
import type { RunningReceiver } from '../receiver/server.js';
import { absDir, parseHostPort } from './common.js';

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

interface ReceiveOptions {
  listen: string;
  dataDir: string;
  logLevel: string;
}

/** Runs the reference receiver until SIGINT/SIGTERM, then closes the server and its database. */
async function runReceiver(opts: ReceiveOptions): Promise<void> {
  const { host, port } = parseHostPort(opts.listen, '--listen');
  if (!LOG_LEVELS.includes(opts.logLevel as LogLevel)) {
    throw new AgentError('USAGE', `--log-level: expected one of ${LOG_LEVELS.join(', ')}, got "${opts.logLevel}"`);
  }
  const log = createLogger(opts.logLevel as LogLevel);
  let receiver: RunningReceiver;
  const { startReceiver } = await import('../receiver/server.js');
  try {
    receiver = await startReceiver({ host, port, dataDir: absDir(opts.dataDir), logger: log.child({ component: 'receiver' }) });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (err instanceof AgentError || typeof code !== 'string') throw err;
    // EADDRINUSE, EADDRNOTAVAIL, EACCES, ENOTFOUND...: the --listen value cannot be used here.
    throw new AgentError('USAGE', `--listen ${opts.listen}: cannot listen (${errorMessage(err)})`, { cause: err });
  }
  process.stdout.write(`receiver listening on ${receiver.url} public key ${deviceIdFromPublicKey(receiver.publicKey)}\n`);

  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting without waiting (accepted batches are committed)');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal }, 'stopping receiver');
      receiver.close().then(resolve, (err: unknown) => {
        log.error({ err }, 'error while stopping the receiver');
        process.exitCode = 1;
        resolve();
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  log.info('receiver stopped');
}

export function registerReceiveCommand(program: Command): void {
  program
    .command('receive')
    .description('run the reference receiver: verify signed batches over HTTP, store them, answer with signed receipts')
    .requiredOption('--listen <host:port>', 'address to listen on: HOST:PORT or [IPv6]:PORT (port 0 picks a free one)')
    .requiredOption('-d, --data-dir <dir>', 'directory for the receiver key, public key and database (created if missing)')
    .option('--log-level <level>', `log level (${LOG_LEVELS.join(', ')})`, 'info')
    .action((opts: ReceiveOptions) => runReceiver(opts));
}
