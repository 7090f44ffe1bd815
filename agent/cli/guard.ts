import type { Command } from 'commander';
import { AgentError } from '../errors.js';
import { absDir, dataDirOption, isoTime, printJson } from './common.js';

/** How long the CLI waits for a running agent to apply a request (it polls about every second). */
const APPLY_WAIT_MS = 10_000;
const MAX_TARGET = 512;

async function openStore(dataDir: string) {
  const { existsSync } = await import('node:fs');
  const { loadConfig } = await import('../config/load.js');
  const { openDatabase } = await import('../store/database.js');
  const { GuardStore } = await import('../store/guard-store.js');
  const { getMeta } = await import('../store/meta.js');
  const loaded = loadConfig(absDir(dataDir));
  const dbPath = loaded.resolvePath(loaded.config.store.path);
  if (!existsSync(dbPath)) throw new AgentError('STORE_MISSING', `no store at ${dbPath} yet: the agent has not run on this data dir (edge-agent run)`, { exitCode: 2 });
  const db = openDatabase(dbPath);
  const snapshot = getMeta(db, 'agent_snapshot');
  const running = snapshot ? (JSON.parse(snapshot) as { running?: boolean }).running === true : false;
  return { db, store: new GuardStore(db), running };
}

/** Writes a request and, with the agent running, waits for its result; without, says it applies at the next start. */
async function request(dataDir: string, action: 'quarantine_release' | 'maintenance_start' | 'maintenance_stop', target: string, until: number | null, json: boolean | undefined): Promise<void> {
  if (target.length === 0 || target.length > MAX_TARGET) throw new AgentError('USAGE', `a key or sensor id has 1-${MAX_TARGET} characters`);
  const { db, store, running } = await openStore(dataDir);
  try {
    const id = store.request(action, target, until);
    let result: string | undefined;
    if (running) {
      const deadline = Date.now() + APPLY_WAIT_MS;
      while ((result = store.requestResult(id)) === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    }
    if (json) return printJson({ request: id, action, target, until, agent_running: running, result: result ?? null });
    const what = `${action.replace('_', ' ')} ${target}`;
    process.stdout.write(result !== undefined ? `${what}: ${result}\n` : `${what}: request #${id} ${running ? 'not applied yet by the running agent (it is busy?); it applies it within seconds' : 'is applied when the agent next starts'}\n`);
    if (result !== undefined && !/^(released|started|stopped)/.test(result)) process.exitCode = 1;
  } finally {
    db.close();
  }
}

/** `2h`, `30m`, `90s`, `1d` (the `ms` package's format) as milliseconds; a usage error otherwise. */
export async function parseFor(text: string): Promise<number> {
  const { default: ms } = await import('ms');
  const n = ms(text as Parameters<typeof ms>[0]) as number | undefined;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0 || n > 365 * 86_400_000) throw new AgentError('USAGE', `--for ${JSON.stringify(text.slice(0, 32))}: give a duration such as 90s, 30m, 2h or 1d (at most a year)`);
  return n;
}

export function registerGuardCommands(program: Command): void {
  const quarantine = program.command('quarantine').description('sensors and sources the guard quarantined (README "Guarding the edge")');
  quarantine
    .command('list')
    .description('what is quarantined: key, reason, since, readings kept and dropped (the counts lag the running agent by about a second)')
    .option('--all', 'also the last released quarantines')
    .option('--json', 'machine-readable output')
    .addOption(dataDirOption())
    .action(async (flags: { dataDir: string; json?: boolean; all?: boolean }) => {
      const { db, store } = await openStore(flags.dataDir);
      try {
        const rows = flags.all ? store.listQuarantines() : store.activeQuarantines();
        const out = rows.map((r) => ({
          key: r.key,
          reason: r.reason,
          since: r.since,
          counts: { kept: r.kept, dropped: r.dropped },
          last_abnormal: r.lastAbnormal,
          released_at: r.releasedAt,
          released_by: r.releasedBy,
        }));
        if (flags.json) return printJson(out);
        if (out.length === 0) return void process.stdout.write('nothing is quarantined\n');
        for (const q of out) {
          process.stdout.write(
            `${q.key}  ${q.reason}  since ${isoTime(q.since)}  kept ${q.counts.kept}  dropped ${q.counts.dropped}${q.released_at ? `  released ${isoTime(q.released_at)} by ${q.released_by}` : ''}\n`,
          );
        }
      } finally {
        db.close();
      }
    });
  quarantine
    .command('release')
    .description('end a quarantine now (recorded upstream as event quarantine.release, by operator)')
    .argument('<key>', 'as quarantine list shows it, e.g. source:mqtt:sensors/flood or sensor:pump1/temp')
    .option('--json', 'machine-readable output')
    .addOption(dataDirOption())
    .action((key: string, flags: { dataDir: string; json?: boolean }) => request(flags.dataDir, 'quarantine_release', key, null, flags.json));

  const maintenance = program.command('maintenance').description('maintenance windows: readings flagged, no alerts, no learning (README "Guarding the edge")');
  maintenance
    .command('start')
    .description('start a maintenance window for a sensor, every sensor below an id (pump1 covers pump1/temp), or an asset')
    .argument('<target>', 'SENSOR or ASSET')
    .option('--for <duration>', 'close it by itself after this long (90s, 30m, 2h, 1d); default: until maintenance stop')
    .option('--json', 'machine-readable output')
    .addOption(dataDirOption())
    .action(async (target: string, flags: { dataDir: string; json?: boolean; for?: string }) => {
      const until = flags.for === undefined ? null : Date.now() + (await parseFor(flags.for));
      await request(flags.dataDir, 'maintenance_start', target, until, flags.json);
    });
  maintenance
    .command('stop')
    .description('close a maintenance window')
    .argument('<target>', 'SENSOR or ASSET')
    .option('--json', 'machine-readable output')
    .addOption(dataDirOption())
    .action((target: string, flags: { dataDir: string; json?: boolean }) => request(flags.dataDir, 'maintenance_stop', target, null, flags.json));
  maintenance
    .command('list')
    .description('open maintenance windows')
    .option('--json', 'machine-readable output')
    .addOption(dataDirOption())
    .action(async (flags: { dataDir: string; json?: boolean }) => {
      const { db, store } = await openStore(flags.dataDir);
      try {
        const rows = store.maintenance();
        if (flags.json) return printJson(rows);
        if (rows.length === 0) return void process.stdout.write('no maintenance window is open\n');
        for (const m of rows) process.stdout.write(`${m.target}  since ${isoTime(m.since)}  ${m.until ? `until ${isoTime(m.until)}` : 'until stopped'}  by ${m.by}\n`);
      } finally {
        db.close();
      }
    });
}
