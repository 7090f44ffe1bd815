import type { Command } from 'commander';
import { resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import { AgentError, errorMessage } from '../errors.js';
import { runDoctor } from '../health/doctor/run-doctor.js';
import type { CheckResult } from '../contracts/doctor-check.js';
import { absDir, dataDirOption, printJson } from './common.js';

interface DoctorCliOptions {
  dataDir: string;
  json?: boolean;
  minFreeMb: number;
  timeoutMs: number;
  modelsDir?: string;
}

const MARK: Record<CheckResult['status'], string> = { pass: 'ok  ', warn: 'WARN', fail: 'FAIL', skip: '-   ' };

function positiveInt(flag: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new AgentError('USAGE', `${flag}: expected a whole number, got "${v}"`);
    return n;
  };
}

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('check what usually goes wrong on a new gateway: serial device, broker, uplink and TLS, clock, disk, key permissions, models')
    .addOption(dataDirOption())
    .option('--json', 'print the findings as JSON')
    .option('--min-free-mb <n>', 'fail the disk check below this much free space', positiveInt('--min-free-mb'), 256)
    .option('--models-dir <dir>', 'directory holding manifest.json (default: the models shipped with edge-agent)')
    .option('--timeout-ms <n>', 'time allowed to each network check', positiveInt('--timeout-ms'), 5000)
    .action(async (opts: DoctorCliOptions) => {
      let results: CheckResult[];
      try {
        const loaded = loadConfig(absDir(opts.dataDir));
        results = await runDoctor(loaded, { minFreeMb: opts.minFreeMb, timeoutMs: opts.timeoutMs, ...(opts.modelsDir ? { modelsDir: resolve(opts.modelsDir) } : {}) });
      } catch (err) {
        // Without a valid config nothing else can be checked: that is the one finding.
        const code = err instanceof AgentError ? err.code : undefined;
        const [detail, permissionFix] = errorMessage(err).split('. Fix: ');
        const fix =
          code === 'CONFIG_NOT_FOUND' ? `create one: edge-agent init --data-dir ${opts.dataDir}` : code === 'PERMISSION' ? (permissionFix ?? 'give the agent\'s user access') : 'fix the keys named above in edge-agent.yaml';
        results = [{ check: 'config', subject: absDir(opts.dataDir), status: 'fail', detail: code === 'PERMISSION' ? detail! : errorMessage(err), fix }];
      }
      const failed = results.filter((r) => r.status === 'fail').length;
      if (opts.json) printJson({ ok: failed === 0, failed, checks: results });
      else {
        const lines = results.map((r) => {
          const head = `${MARK[r.status]} ${r.check.padEnd(15)} ${r.subject === '-' ? '' : `${r.subject}: `}${r.detail}`;
          return r.fix ? `${head}\n       fix: ${r.fix}` : head;
        });
        lines.push(failed === 0 ? 'all checks passed' : `${failed} check${failed === 1 ? '' : 's'} failed`);
        process.stdout.write(`${lines.join('\n')}\n`);
      }
      if (failed > 0) process.exitCode = 1;
    });
}
