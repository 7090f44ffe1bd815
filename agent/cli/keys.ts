import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { readKeyFile } from '../identity/keys.js';
import { absDir, dataDirOption, printJson } from './common.js';

export function registerKeysCommand(program: Command): void {
  const keys = program.command('keys').description('show the device identity');
  keys
    .command('show')
    .description('print the device id (did:key of the ed25519 public key) and the key in hex')
    .addOption(dataDirOption())
    .option('--json', 'print as JSON')
    .action((opts: { dataDir: string; json?: boolean }) => {
      const loaded = loadConfig(absDir(opts.dataDir));
      const keyPath = loaded.resolvePath(loaded.config.device.key_file);
      const id = readKeyFile(keyPath);
      const pub = Buffer.from(id.publicKey).toString('hex');
      if (opts.json) printJson({ device_id: id.deviceId, public_key_hex: pub, key_file: keyPath });
      else process.stdout.write(`device id  ${id.deviceId}\npublic key ${pub}\nkey file   ${keyPath}\n`);
    });
}
