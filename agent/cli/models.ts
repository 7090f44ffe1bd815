import type { Command } from 'commander';
import { resolve } from 'node:path';
import { printJson } from './common.js';

interface ModelsFlags {
  modelsDir?: string;
  json?: boolean;
}

async function modelsDirOf(flags: ModelsFlags): Promise<string> {
  const { SHIPPED_MODELS_DIR } = await import('../inference/manifest.js');
  return flags.modelsDir ? resolve(flags.modelsDir) : SHIPPED_MODELS_DIR;
}

export function registerModelsCommand(program: Command): void {
  const models = program.command('models').description('the on-device models: list them, check their files against the manifest');
  models
    .command('list')
    .description('list the models of the manifest with their inputs, outputs and alert rule')
    .option('--models-dir <dir>', 'directory holding manifest.json (default: the models shipped with edge-agent)')
    .option('--json', 'machine-readable output')
    .action(async (flags: ModelsFlags) => {
      const { loadManifest } = await import('../inference/manifest.js');
      const manifest = loadManifest(await modelsDirOf(flags));
      if (flags.json) return printJson(manifest.models.map(({ training: _t, ...m }) => m));
      for (const m of manifest.models) {
        const rule = `${m.alert.output} ${m.alert.direction === 'above' ? '>=' : '<='} ${m.alert.on} (clears at ${m.alert.off})`;
        process.stdout.write(
          `${m.id} ${m.version} (${m.task}): ${m.description}\n` +
            `  file ${m.file}, sha256 ${m.sha256}\n` +
            `  input ${m.input.window} x [${m.input.features.join(', ')}], ${m.normalisation.type === 'warmup' ? `warm-up ${m.normalisation.warmup} rows` : 'fixed normalisation'}\n` +
            `  outputs ${m.outputs.map((o) => o.name).join(', ')}${m.score ? ', score' : ''}; alert when ${rule}\n`,
        );
      }
    });
  models
    .command('verify')
    .description('check every model file against the sha256 in the manifest (exit 1 if one does not match)')
    .option('--models-dir <dir>', 'directory holding manifest.json (default: the models shipped with edge-agent)')
    .option('--json', 'machine-readable output')
    .action(async (flags: ModelsFlags) => {
      const { verifyModels } = await import('../inference/manifest.js');
      const checks = verifyModels(await modelsDirOf(flags));
      if (flags.json) printJson(checks);
      else for (const c of checks) process.stdout.write(c.ok ? `ok      ${c.id}  ${c.file}\n` : `FAILED  ${c.id}  ${c.error}\n`);
      if (checks.some((c) => !c.ok)) process.exitCode = 1;
    });
}
