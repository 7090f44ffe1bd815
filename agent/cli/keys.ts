import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import { AgentError } from '../errors.js';
import { copyKeyAside, replacedKeys } from '../identity/key-backup.js';
import { storeDevice } from '../store/meta.js';
import { Identity, readKeyFile, writeKeyFile } from '../identity/keys.js';
import { acquireDataDirLock } from '../store/lock.js';
import { absDir, dataDirOption, printJson } from './common.js';

/**
 * Puts a key set aside by `init --force` (or any PKCS#8 ed25519 key file) back as the device key.
 * Refused while the agent runs, and when the store is bound to another device than the key's;
 * the key it replaces is itself kept as `<key>.replaced-<time>`.
 */
function restoreKey(dataDir: string, file: string): { deviceId: string; keyPath: string; keptAs?: string } {
  const loaded = loadConfig(absDir(dataDir));
  const keyPath = loaded.resolvePath(loaded.config.device.key_file);
  const source = resolve(file);
  if (!existsSync(source)) throw new AgentError('USAGE', `keys restore: ${source} not found${replacedKeys(keyPath).length ? `; keys set aside here: ${replacedKeys(keyPath).join(', ')}` : ''}`);
  const identity = readKeyFile(source);
  let release: () => void;
  try {
    release = acquireDataDirLock(loaded.dataDir);
  } catch (err) {
    if (err instanceof AgentError && err.code === 'LOCKED') throw new AgentError('LOCKED', `refusing to restore the device key: ${err.message}`, { exitCode: 2 });
    throw err;
  }
  try {
    const bound = storeDevice(loaded.resolvePath(loaded.config.store.path));
    if (bound !== undefined && bound !== identity.deviceId) {
      throw new AgentError('KEY_MISMATCH', `keys restore: the store belongs to device ${bound}, but ${source} is ${identity.deviceId}; restoring it would not let the agent start`, { exitCode: 2 });
    }
    if (existsSync(keyPath) && readKeyFile(keyPath).deviceId === identity.deviceId) return { deviceId: identity.deviceId, keyPath };
    const keptAs = existsSync(keyPath) ? copyKeyAside(keyPath) : undefined;
    writeKeyFile(keyPath, identity, true);
    return { deviceId: identity.deviceId, keyPath, ...(keptAs ? { keptAs } : {}) };
  } finally {
    release();
  }
}

export function registerKeysCommand(program: Command): void {
  const keys = program.command('keys').description('show the device identity; restore a key that init --force set aside');
  keys
    .command('show')
    .description('print the device id (did:key of the ed25519 public key), the key in hex, and keys set aside by init --force')
    .addOption(dataDirOption())
    .option('--json', 'print as JSON')
    .action((opts: { dataDir: string; json?: boolean }) => {
      const loaded = loadConfig(absDir(opts.dataDir));
      const keyPath = loaded.resolvePath(loaded.config.device.key_file);
      const id = readKeyFile(keyPath);
      const pub = Buffer.from(id.publicKey).toString('hex');
      const replaced = replacedKeys(keyPath);
      if (opts.json) printJson({ device_id: id.deviceId, public_key_hex: pub, key_file: keyPath, replaced_keys: replaced });
      else process.stdout.write(`device id  ${id.deviceId}\npublic key ${pub}\nkey file   ${keyPath}\n${replaced.map((f) => `set aside  ${f}\n`).join('')}`);
    });
  keys
    .command('generate')
    .description('make a new Ed25519 key file (mode 0600) and print its did:key; with --publisher, the key that signs update bundles and model manifests (keep it off the gateways)')
    .requiredOption('--out <file>', 'where to write the key (refused if it exists)')
    .option('--publisher', 'a publisher key: gateways trust it with init --update-publisher-key DID (update.publisher_key)')
    .option('--json', 'print as JSON')
    .action((opts: { out: string; publisher?: boolean; json?: boolean }) => {
      const path = resolve(opts.out);
      const identity = Identity.generate();
      writeKeyFile(path, identity, false);
      if (opts.json) return printJson({ key_file: path, public_key: identity.deviceId, publisher: opts.publisher === true });
      process.stdout.write(`key file   ${path}
public key ${identity.deviceId}
${opts.publisher ? `on each gateway: edge-agent init --update-publisher-key ${identity.deviceId} (or update.publisher_key in edge-agent.yaml)
` : ''}`);
    });
  keys
    .command('restore <file>')
    .description('make FILE (e.g. device.key.replaced-<time>) the device key again; the current key is kept as device.key.replaced-<time>')
    .addOption(dataDirOption())
    .option('--json', 'print as JSON')
    .action((file: string, opts: { dataDir: string; json?: boolean }) => {
      const r = restoreKey(opts.dataDir, file);
      if (opts.json) printJson({ device_id: r.deviceId, key_file: r.keyPath, ...(r.keptAs ? { replaced_key: r.keptAs } : {}) });
      else process.stdout.write(`device id ${r.deviceId} restored to ${r.keyPath}${r.keptAs ? `\nthe key it replaced is kept as ${r.keptAs}` : ''}\n`);
    });
}
