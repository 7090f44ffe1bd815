import type { Command } from 'commander';
import { writeSync } from 'node:fs';
import { AgentError, errorMessage } from '../errors.js';
import { probeClockAsync } from '../clock/clock-probe.js';
import { loadConfig } from '../config/load.js';
import { createLogger, type LogLevel } from '../log.js';
import { absDir, dataDirOption, parseLogLevel, stopOnSignal } from './common.js';
import { tuneHeapForGateway } from '../run/heap-tuning.js';

/** Runs the agent until SIGINT/SIGTERM, then stops it cleanly: commit, cut the last batch, close the store. */
export async function runAgentForeground(dataDir: string, logLevel?: LogLevel, readyFd?: number): Promise<void> {
  tuneHeapForGateway();
  const loaded = loadConfig(absDir(dataDir));
  const log = createLogger(logLevel ?? loaded.config.log.level);
  // Asked now, answered while the agent's code loads (clock-status.ts seed()).
  const clockProbe = loaded.config.clock.synced === 'auto' ? probeClockAsync() : undefined;
  // Loaded on demand: status, verify and keys start faster without the MQTT client.
  const { Agent } = await import('../run/agent.js');
  const agent = await Agent.create(loaded, log, clockProbe ? { clockProbe } : {});
  // The handler is in place before start: a SIGTERM while models load or sources connect (systemd
  // stopping a slow start) waits for the start to finish, then stops cleanly, instead of killing.
  const started = agent.start();
  const stopped = stopOnSignal(log, 'agent', async () => {
    await started;
    await agent.stop();
  });
  // SIGHUP reloads edge-agent.yaml (README "Reloading the config"); before the start is done it waits for it.
  process.on('SIGHUP', () => {
    log.info({ signal: 'SIGHUP' }, 'reloading the config');
    // A refused reload is logged (with its file:line: key error) and shown in status by the agent itself.
    void started.then(() => agent.reloadFromFile()).catch(() => undefined);
  });
  try {
    await started;
    if (readyFd !== undefined) {
      // One JSON line once every source takes input (MQTT: subscription granted); the log says the same.
      void agent.whenReady().then((report) => {
        log.info({ http: report.http }, 'agent ready');
        try {
          writeSync(readyFd, `${JSON.stringify(report)}\n`);
        } catch (err) {
          log.error({ fd: readyFd, err: errorMessage(err) }, `--ready-fd ${readyFd}: cannot write the ready line (is the descriptor open?)`);
        }
      });
    }
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
    .option('--ready-fd <n>', 'write one JSON line to this open file descriptor once every source takes input: {"ready":true,"pid","device","boot","sources","http":{"host","port"}|null}', parseReadyFd)
    .action(async (opts: { dataDir: string; logLevel?: string; readyFd?: number }) => {
      await runAgentForeground(opts.dataDir, parseLogLevel(opts.logLevel), opts.readyFd);
    });
}

function parseReadyFd(value: string): number {
  const n = Number(value);
  // 0 is stdin; 2 is the log. 1 (stdout) is allowed: the agent writes nothing else there.
  if (!/^\d{1,4}$/.test(value) || n === 0 || n === 2) throw new AgentError('USAGE', `--ready-fd: expected an open file descriptor number such as 3 (not 0 or 2), got "${value}"`);
  return n;
}
