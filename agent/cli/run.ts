import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { createLogger, type LogLevel } from '../log.js';
import { absDir, dataDirOption, parseLogLevel, stopOnSignal } from './common.js';

/** Runs the agent until SIGINT/SIGTERM, then stops it cleanly: commit, cut the last batch, close the store. */
export async function runAgentForeground(dataDir: string, logLevel?: LogLevel): Promise<void> {
  const loaded = loadConfig(absDir(dataDir));
  const log = createLogger(logLevel ?? loaded.config.log.level);
  // Loaded on demand: status, verify and keys start faster without the MQTT client.
  const { Agent } = await import('../run/agent.js');
  const agent = await Agent.create(loaded, log);
  // The handler is in place before start: a SIGTERM while models load or sources connect (systemd
  // stopping a slow start) waits for the start to finish, then stops cleanly, instead of killing.
  const started = agent.start();
  const stopped = stopOnSignal(log, 'agent', async () => {
    await started;
    await agent.stop();
  });
  try {
    await started;
  } catch (err) {
    // A start that fails part-way (a model refused, a port taken after sources connected) must not
    // leave sources acknowledging readings in a process that reports failure: stop what started.
    await agent.stop(0).catch((stopErr: unknown) => log.error({ err: stopErr }, 'cleaning up after the failed start also failed'));
    throw err;
  }
  await stopped;
}

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('run the agent in the foreground: read sensors, store, sign and deliver batches')
    .addOption(dataDirOption())
    .option('--log-level <level>', 'override log.level from the config (fatal, error, warn, info, debug, trace)')
    .action(async (opts: { dataDir: string; logLevel?: string }) => {
      await runAgentForeground(opts.dataDir, parseLogLevel(opts.logLevel));
    });
}
