import type { Command } from 'commander';
import { AgentError } from '../errors.js';
import { absDir, collect, dataDirOption, printJson, timeArg } from './common.js';

/** Sensors one request may name at most. */
const MAX_SENSORS = 64;

/**
 * `edge-agent upload`: uplink summary mode keeps readings locally (agent/adaptive/README.md); this
 * hands the kept readings of a sensor and time range back to the batch cut, so they go up in full
 * with the next batches, and records a signed `report.full_rate` event saying who asked.
 * Works whether the agent runs or not (the running agent's batcher finds the event and cuts).
 */
export function registerUploadCommand(program: Command): void {
  program
    .command('upload')
    .description('upload in full the readings summary mode kept for a sensor (adaptive.summary): they join the next signed batches; recorded upstream as event report.full_rate')
    .requiredOption('--sensor <id>', 'sensor id (repeatable)', collect)
    .option('--from <time>', 'first reading time (RFC 3339 or ms since the epoch; default: the oldest kept)', timeArg('--from'))
    .option('--to <time>', 'last reading time (RFC 3339 or ms since the epoch; default: now)', timeArg('--to'))
    .option('--by <who>', 'who asked (carried in the event), e.g. an operator or a ticket', 'operator')
    .addOption(dataDirOption())
    .option('--json', 'machine-readable output')
    .action(async (flags: { sensor: string[]; from?: number; to?: number; by: string; dataDir: string; json?: boolean }) => {
      if (flags.sensor.length > MAX_SENSORS) throw new AgentError('USAGE', `upload: at most ${MAX_SENSORS} --sensor per request`);
      for (const s of flags.sensor) if (s.length < 1 || s.length > 256) throw new AgentError('USAGE', `upload: --sensor "${s.slice(0, 40)}": a sensor id has 1-256 characters`);
      if (flags.by.length > 256) throw new AgentError('USAGE', 'upload: --by has at most 256 characters');
      const from = flags.from ?? 0;
      const to = flags.to ?? Date.now();
      if (from > to) throw new AgentError('USAGE', `upload: --from (${new Date(from).toISOString()}) is after --to (${new Date(to).toISOString()})`);
      const { existsSync } = await import('node:fs');
      const { loadConfig } = await import('../config/load.js');
      const { openDatabase } = await import('../store/database.js');
      const { HeldReadings } = await import('../store/held-readings.js');
      const loaded = loadConfig(absDir(flags.dataDir));
      const dbPath = loaded.resolvePath(loaded.config.store.path);
      if (!existsSync(dbPath)) throw new AgentError('STORE_MISSING', `no store at ${dbPath} yet: the agent has not run on this data dir, so nothing was kept`, { exitCode: 2 });
      const db = openDatabase(dbPath);
      try {
        const held = new HeldReadings(db);
        const results = flags.sensor.map((sensor) => ({ sensor, ...held.release(sensor, from, to, { reason: 'upload', by: flags.by }) }));
        if (flags.json) return printJson({ from, to, sensors: results.map((r) => ({ sensor: r.sensor, released: r.released, event: r.event })) });
        for (const r of results) process.stdout.write(`${r.sensor}: ${r.released} kept readings released for upload (event report.full_rate #${r.event})\n`);
        if (results.every((r) => r.released === 0)) process.stdout.write('nothing was kept for these sensors in that range (is adaptive.summary on for them? kept readings are deleted after store.retain_delivered_hours)\n');
      } finally {
        db.close();
      }
    });
}
