import type { Command } from 'commander';
import { AgentError, errorMessage } from '../errors.js';
import { deviceIdFromPublicKey } from '../identity/device-id.js';
import { createLogger, LOG_LEVELS } from '../log.js';
import type { RunningReceiver } from '../receiver/server.js';
import { absDir, parseHostPort, parseLogLevel, stopOnSignal } from './common.js';

interface ReceiveOptions {
  listen: string;
  dataDir: string;
  logLevel: string;
}

/** Runs the reference receiver until SIGINT/SIGTERM, then closes the server and its database. */
async function runReceiver(opts: ReceiveOptions): Promise<void> {
  const { host, port } = parseHostPort(opts.listen, '--listen');
  const log = createLogger(parseLogLevel(opts.logLevel) ?? 'info');
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

  await stopOnSignal(log, 'receiver', () => receiver.close());
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
