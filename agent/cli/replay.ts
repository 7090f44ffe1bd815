import { Option, type Command } from 'commander';
import { resolve } from 'node:path';
import { AgentError } from '../errors.js';
import { createProgress } from '../progress/progress.js';
import { printJson } from './common.js';

interface ReplayFlags {
  input: string;
  output: string;
  model?: string;
  assetColumn?: string;
  modelsDir?: string;
  warmup?: string;
  progress: boolean;
  json?: boolean;
}

export function registerReplayCommand(program: Command): void {
  program
    .command('replay')
    .description(
      'run a model over a CSV file, row by row and strictly causally, exactly as live; the output repeats the input columns and adds the model outputs',
    )
    .requiredOption('-i, --input <file>', 'CSV with a header (delimiter , ; or TAB); without --model: columns timestamp and value')
    .requiredOption('-o, --output <file>', 'where to write the scored CSV')
    .option('-m, --model <id>', 'a model of the manifest (e.g. skab-pump, cmapss-rul), fed its input columns by name; default: the streaming detector (stream-ad) on column value')
    .option('--asset-column <column>', 'group rows per value of this column (e.g. unit); windows never cross assets')
    .option('--models-dir <dir>', 'directory holding manifest.json (default: the models shipped with edge-agent)')
    .addOption(new Option('--warmup <rows>', 'override the warm-up length (rows before the first verdict) of a model with warm-up or online normalisation'))
    .option('--no-progress', 'no progress bar or lines on stderr')
    .option('--json', 'print the summary as JSON')
    .action(async (flags: ReplayFlags) => {
      let warmup: number | undefined;
      if (flags.warmup !== undefined) {
        warmup = Number(flags.warmup);
        if (!Number.isInteger(warmup) || warmup < 1) throw new AgentError('USAGE', `--warmup: expected a positive whole number of rows, got "${flags.warmup}"`);
      }
      const { replayCsv } = await import('../inference/replay.js');
      const { SHIPPED_MODELS_DIR } = await import('../inference/manifest.js');
      const summary = await replayCsv({
        input: flags.input,
        output: flags.output,
        modelsDir: flags.modelsDir ? resolve(flags.modelsDir) : SHIPPED_MODELS_DIR,
        ...(flags.model !== undefined ? { modelId: flags.model } : {}),
        ...(flags.assetColumn !== undefined ? { assetColumn: flags.assetColumn } : {}),
        ...(warmup !== undefined ? { warmup } : {}),
        ...(flags.progress ? { progress: (total: number) => createProgress({ label: `replay ${flags.input}`, total, unit: 'bytes' }) } : {}),
      });
      for (const w of summary.warnings) process.stderr.write(`warning: ${w}\n`);
      if (flags.json) printJson(summary);
      else {
        process.stdout.write(
          `${summary.rows} rows (${summary.keys} ${summary.keys === 1 ? 'series' : 'series/assets'}) scored by ${summary.model} (sha256 ${summary.modelSha256.slice(0, 16)}...) ` +
            `in ${summary.seconds.toFixed(2)} s: ${summary.verdicts} verdicts, ${summary.alertsRaised} alerts raised -> ${flags.output}\n`,
        );
      }
    });
}
