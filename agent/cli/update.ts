import type { Command } from 'commander';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { AgentError, errorMessage } from '../errors.js';
import { collect, printJson } from './common.js';

interface BundleFlags {
  key: string;
  id: string;
  bundleVersion: string;
  modelsDir?: string;
  config?: string;
  urlBase?: string;
  device?: string[];
  out: string;
  json?: boolean;
}

/** `edge-agent update bundle`: a signed update bundle of a model set or a config (docs/updates.md §2). */
export function registerUpdateCommand(program: Command): void {
  const update = program.command('update').description('signed remote updates: make a bundle for edge-agent fleet publish (docs/updates.md)');
  update
    .command('bundle')
    .description('sign a model set (manifest.json and the files it lists) or a config (edge-agent.yaml) as an update bundle; small files go inline, with --url-base every file is fetched by URL')
    .requiredOption('--key <file>', 'the publisher key (edge-agent keys generate --publisher)')
    .requiredOption('--id <id>', 'bundle id: 1-64 of [a-z0-9._-]; a gateway handles each id once, so a fixed re-release needs a new id')
    .requiredOption('--bundle-version <text>', 'the version the gateways report (status, events, fleet status)')
    .option('--models-dir <dir>', 'a model set: the directory holding manifest.json (and manifest.json.sig if the gateways require one)')
    .option('--config <file>', 'a config: the complete edge-agent.yaml the gateways should run')
    .option('--url-base <url>', 'name every file by URL <url>/<file> instead of carrying it inline (models larger than the 40 KiB bundle)')
    .option('--device <did>', 'only this device may apply it (repeatable); default any device that trusts the publisher', collect)
    .requiredOption('--out <file>', 'where to write the bundle (CBOR)')
    .option('--json', 'print the result as JSON')
    .action(async (flags: BundleFlags) => {
      if ((flags.modelsDir === undefined) === (flags.config === undefined)) throw new AgentError('USAGE', 'update bundle: give exactly one of --models-dir DIR or --config FILE');
      const { readKeyFile } = await import('../identity/keys.js');
      const { publicKeyFromDeviceId } = await import('../identity/device-id.js');
      const { signUpdate } = await import('../identity/update-bundle.js');
      const publisher = readKeyFile(resolve(flags.key));
      let paths: string[];
      if (flags.modelsDir) {
        const { loadManifest } = await import('../inference/manifest.js');
        const dir = resolve(flags.modelsDir);
        const manifest = loadManifest(dir); // never ship a set the gateways would refuse
        const extra = readdirSync(dir).filter((f) => f === 'manifest.json.sig');
        paths = [join(dir, 'manifest.json'), ...extra.map((f) => join(dir, f)), ...[...new Set(manifest.models.map((m) => m.file))].map((f) => join(dir, f))];
      } else paths = [resolve(flags.config!)];
      const files = paths.map((path) => {
        const bytes = readFileSync(path);
        const name = flags.config ? 'edge-agent.yaml' : basename(path);
        const h = createHash('sha256').update(bytes).digest();
        return { p: name, h: new Uint8Array(h), n: statSync(path).size, ...(flags.urlBase ? { u: `${flags.urlBase.replace(/\/+$/, '')}/${name}` } : { b: new Uint8Array(bytes) }) };
      });
      let to: Uint8Array[] | undefined;
      try {
        to = flags.device?.map((d) => publicKeyFromDeviceId(d));
      } catch (err) {
        throw new AgentError('USAGE', `--device: ${errorMessage(err)}`);
      }
      let envelope: Uint8Array;
      try {
        envelope = signUpdate(publisher, { id: flags.id, ver: flags.bundleVersion, kind: flags.modelsDir ? 'models' : 'config', at: Date.now(), files, ...(to ? { to } : {}) });
      } catch (err) {
        throw new AgentError('USAGE', `update bundle: ${errorMessage(err)}`);
      }
      writeFileSync(resolve(flags.out), envelope);
      const result = { out: resolve(flags.out), bytes: envelope.length, id: flags.id, version: flags.bundleVersion, files: files.map((f) => f.p), publisher: publisher.deviceId };
      if (flags.json) return printJson(result);
      process.stdout.write(`wrote ${result.out} (${result.bytes} bytes): bundle ${result.id} ${result.version}, ${result.files.join(', ')}\nsigned by ${result.publisher}\n`);
    });
}
