import type { Command } from 'commander';
import { resolve } from 'node:path';
import { AgentError, errorMessage } from '../errors.js';
import { absDir, dataDirOption, printJson } from './common.js';

interface ModelsFlags {
  modelsDir?: string;
  publisherKey?: string;
  json?: boolean;
}

async function publisherKeyOf(flags: ModelsFlags): Promise<{ publisherKey?: Uint8Array }> {
  if (!flags.publisherKey) return {};
  const { publicKeyFromDeviceId } = await import('../identity/device-id.js');
  try {
    return { publisherKey: publicKeyFromDeviceId(flags.publisherKey) };
  } catch (err) {
    throw new AgentError('USAGE', `--publisher-key: ${errorMessage(err)}`);
  }
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
        const rule = `${m.alert.output} ${m.alert.direction === 'above' ? '>=' : '<='} ${m.alert.on} (clears at ${m.alert.clear_output ?? m.alert.output} ${m.alert.direction === 'above' ? '<' : '>'} ${m.alert.off} for ${m.alert.off_count} rows)`;
        process.stdout.write(
          `${m.id} ${m.version} (${m.task}): ${m.description}\n` +
            `  file ${m.file}, sha256 ${m.sha256}\n` +
            `  input ${m.input.window} x [${m.input.features.join(', ')}], ${m.normalisation.type === 'warmup' ? `warm-up ${m.normalisation.warmup} rows` : m.normalisation.type === 'online' ? `online baseline (keeps learning), warm-up ${m.normalisation.warmup} rows` : 'fixed normalisation'}\n` +
            `  outputs ${m.outputs.map((o) => o.name).join(', ')}${m.score ? ', score' : ''}; alert when ${rule}\n`,
        );
      }
    });
  models
    .command('verify')
    .description('check every model file against the sha256 in the manifest (exit 1 if one does not match), and with --publisher-key the manifest signature')
    .option('--models-dir <dir>', 'directory holding manifest.json (default: the models shipped with edge-agent)')
    .option('--publisher-key <did>', 'require manifest.json.sig to verify with this did:key')
    .option('--json', 'machine-readable output')
    .action(async (flags: ModelsFlags) => {
      const { verifyModels } = await import('../inference/manifest.js');
      const checks = verifyModels(await modelsDirOf(flags), await publisherKeyOf(flags));
      if (flags.json) printJson(checks);
      else for (const c of checks) process.stdout.write(c.ok ? `ok      ${c.id}  ${c.file}\n` : `FAILED  ${c.id}  ${c.error}\n`);
      if (checks.some((c) => !c.ok)) process.exitCode = 1;
    });
  models
    .command('relearn')
    .description('make series start a fresh baseline (after maintenance, a sensor swap, a new normal): one sensor, every series of an asset, or all; works whether the agent runs or not, and is recorded upstream as event model.relearn')
    .argument('[sensor]', 'the sensor id of a single-channel series (e.g. pump1/temp)')
    .option('--asset <id>', 'the asset of a multivariate binding, and every sensor <id>/...')
    .option('--all', 'every series of every binding')
    .addOption(dataDirOption())
    .option('--json', 'machine-readable output')
    .action(async (sensor: string | undefined, flags: { asset?: string; all?: boolean; dataDir: string; json?: boolean }) => {
      const chosen = [sensor !== undefined, flags.asset !== undefined, flags.all === true].filter(Boolean).length;
      if (chosen !== 1) throw new AgentError('USAGE', 'models relearn: name exactly one of SENSOR, --asset ID or --all');
      const target = sensor ?? flags.asset ?? '';
      if (target.length > 256) throw new AgentError('USAGE', 'models relearn: a sensor or asset id has at most 256 characters');
      const selector = sensor !== undefined ? 'sensor' : flags.asset !== undefined ? 'asset' : 'all';
      const { existsSync } = await import('node:fs');
      const { loadConfig } = await import('../config/load.js');
      const { openDatabase } = await import('../store/database.js');
      const { RelearnStore } = await import('../store/relearn-store.js');
      const { getMeta } = await import('../store/meta.js');
      const loaded = loadConfig(absDir(flags.dataDir));
      const dbPath = loaded.resolvePath(loaded.config.store.path);
      if (!existsSync(dbPath)) throw new AgentError('STORE_MISSING', `no store at ${dbPath} yet: the agent has not run on this data dir, so there is no baseline to relearn`, { exitCode: 2 });
      const db = openDatabase(dbPath);
      try {
        const id = new RelearnStore(db).request(selector, target);
        const snapshot = getMeta(db, 'agent_snapshot');
        const running = snapshot ? (JSON.parse(snapshot) as { running?: boolean }).running === true : false;
        const what = selector === 'all' ? 'all series' : `${selector} ${target}`;
        if (flags.json) return printJson({ request: id, selector, target, agent_running: running });
        process.stdout.write(
          `relearn request #${id} for ${what}: ${running ? 'the running agent applies it within a second' : 'applied when the agent next starts'}; ` +
            'each matching series starts a fresh baseline and is reported upstream as event model.relearn\n',
        );
      } finally {
        db.close();
      }
    });
  models
    .command('sign')
    .description("sign manifest.json as the model publisher (writes manifest.json.sig); gateways with inference.publisher_key then refuse models whose manifest it does not sign")
    .requiredOption('--key <file>', 'the publisher key: Ed25519 PKCS#8 PEM, mode 0600 (edge-agent init makes one as device.key; keep the publisher key off the gateways)')
    .option('--models-dir <dir>', 'directory holding manifest.json (default: the models shipped with edge-agent)')
    .action(async (flags: ModelsFlags & { key: string }) => {
      const { readFileSync, writeFileSync } = await import('node:fs');
      const { join } = await import('node:path');
      const { readKeyFile } = await import('../identity/keys.js');
      const { loadManifest, MANIFEST_FILE, MANIFEST_SIGNATURE_FILE } = await import('../inference/manifest.js');
      const dir = await modelsDirOf(flags);
      loadManifest(dir); // never sign a manifest the agent would refuse
      const publisher = readKeyFile(resolve(flags.key));
      const sig = publisher.sign(readFileSync(join(dir, MANIFEST_FILE)));
      writeFileSync(join(dir, MANIFEST_SIGNATURE_FILE), `${Buffer.from(sig).toString('base64')}\n`);
      process.stdout.write(`signed ${join(dir, MANIFEST_FILE)} -> ${MANIFEST_SIGNATURE_FILE}\npublisher key ${publisher.deviceId}\nset inference.publisher_key: ${publisher.deviceId} on the gateways\n`);
    });
}
