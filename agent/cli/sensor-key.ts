import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { parseDocument } from 'yaml';
import { loadConfig, parseConfig } from '../config/load.js';
import { AgentError } from '../errors.js';
import { Identity, readKeyFile } from '../identity/keys.js';
import { absDir, dataDirOption, printJson } from './common.js';

/**
 * Key provisioning for sensor-signed readings (firmware-bridge/PROTOCOL.md §3.9): a board's
 * Ed25519 key is made here (or on the board, and only its public key registered here), and the
 * public key is written into the agent's config under the serial source that hears the board,
 * keyed by the board's uid (`sources.ID.attest_keys`). The agent checks ATTEST frames under the
 * key registered for the uid the HELLO names, never under a key the line offers. Restart the
 * agent (or `run` it) for a change to take effect.
 */

const UID = /^[0-9a-f]{16}$/;
const PUBLIC_KEY = /^[0-9a-f]{64}$/;

interface Target {
  dataDir: string;
  source: string;
  device: string;
}

function checkTarget(opts: { dataDir: string; source: string; device: string }): Target & { configPath: string } {
  const device = opts.device.toLowerCase();
  if (!UID.test(device)) throw new AgentError('USAGE', `--device: a board uid is 16 hex digits, as its HELLO sends it (the simulator's is 514d000000000001), got "${opts.device}"`);
  const loaded = loadConfig(absDir(opts.dataDir));
  const source = loaded.config.sources[opts.source];
  if (!source) throw new AgentError('USAGE', `--source: no source "${opts.source}" in ${loaded.path} (sources: ${Object.keys(loaded.config.sources).join(', ') || 'none'})`);
  if (source.type !== 'serial') throw new AgentError('USAGE', `--source: "${opts.source}" is a ${source.type} source; sensor keys belong to a serial source (firmware bridge)`);
  return { dataDir: loaded.dataDir, source: opts.source, device, configPath: loaded.path };
}

/** Sets sources.SOURCE.attest_keys.DEVICE in the YAML file, keeping its comments; the result must load. */
function registerKey(configPath: string, source: string, device: string, publicKeyHex: string, force: boolean): void {
  const text = readFileSync(configPath, 'utf8');
  const doc = parseDocument(text);
  const path = ['sources', source, 'attest_keys', device];
  const old = doc.getIn(path) as string | undefined;
  if (old !== undefined && old !== publicKeyHex && !force) {
    throw new AgentError('KEY_EXISTS', `device ${device} on source ${source} already has sensor key ${old}; use --force to replace it (the board must then be flashed with the new key)`, { exitCode: 2 });
  }
  doc.setIn(path, publicKeyHex);
  const out = doc.toString({ lineWidth: 0 });
  parseConfig(out, configPath); // never leave a config that run rejects
  const tmp = `${configPath}.tmp-${process.pid}`;
  writeFileSync(tmp, out, { mode: 0o644 });
  renameSync(tmp, configPath);
}

/** The board's key file: the 32-byte seed as 64 hex digits and a newline, mode 0600 (the simulator's --key, a sketch's constant). */
function writeSeedFile(path: string, seed: Uint8Array, force: boolean): void {
  if (existsSync(path) && !force) throw new AgentError('KEY_EXISTS', `${path} already exists; refusing to replace a sensor key (use --force)`, { exitCode: 2 });
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${Buffer.from(seed).toString('hex')}\n`);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

export function registerSensorKeyCommand(program: Command): void {
  const cmd = program.command('sensor-key').description('provision sensor keys for sensor-signed readings over the firmware bridge (PROTOCOL.md §3.9)');
  cmd
    .command('generate')
    .description("make a board's Ed25519 key: write its seed to --out (0600, for the board's flash) and register its public key for --device on --source")
    .addOption(dataDirOption())
    .requiredOption('--source <id>', 'the serial source that hears the board')
    .requiredOption('--device <uid>', "the board's uid, 16 hex digits, as its HELLO sends it")
    .requiredOption('--out <file>', 'where to write the seed (64 hex digits); move it onto the board, keep no copy')
    .option('--force', 'replace an existing key file or registered key')
    .option('--json', 'print as JSON')
    .action((opts: { dataDir: string; source: string; device: string; out: string; force?: boolean; json?: boolean }) => {
      const t = checkTarget(opts);
      const seed = new Uint8Array(randomBytes(32));
      const publicKey = Buffer.from(Identity.fromSeed(seed).publicKey).toString('hex');
      const out = resolve(opts.out);
      // Registered first: a key file the agent does not know would only make the board's signatures flagged.
      registerKey(t.configPath, t.source, t.device, publicKey, opts.force === true);
      writeSeedFile(out, seed, opts.force === true);
      if (opts.json) printJson({ source: t.source, device: t.device, public_key: publicKey, key_file: out, config: t.configPath });
      else process.stdout.write(`sensor key for device ${t.device} on source ${t.source}\npublic key ${publicKey} (registered in ${t.configPath})\nkey file   ${out} (flash it to the board; restart the agent to use the key)\n`);
    });
  cmd
    .command('register')
    .description('register the public key of a board that made its own key (a secure element, ESP-IDF), for --device on --source')
    .addOption(dataDirOption())
    .requiredOption('--source <id>', 'the serial source that hears the board')
    .requiredOption('--device <uid>', "the board's uid, 16 hex digits")
    .requiredOption('--public-key <hex>', "the board's Ed25519 public key, 64 hex digits")
    .option('--force', 'replace a key registered before')
    .option('--json', 'print as JSON')
    .action((opts: { dataDir: string; source: string; device: string; publicKey: string; force?: boolean; json?: boolean }) => {
      const t = checkTarget(opts);
      const publicKey = opts.publicKey.toLowerCase();
      if (!PUBLIC_KEY.test(publicKey)) throw new AgentError('USAGE', `--public-key: an Ed25519 public key is 64 hex digits, got ${opts.publicKey.length} characters`);
      registerKey(t.configPath, t.source, t.device, publicKey, opts.force === true);
      if (opts.json) printJson({ source: t.source, device: t.device, public_key: publicKey, config: t.configPath });
      else process.stdout.write(`registered ${publicKey} for device ${t.device} on source ${t.source} in ${t.configPath}\n`);
    });
  cmd
    .command('list')
    .description('the sensor keys registered per serial source and device')
    .addOption(dataDirOption())
    .option('--json', 'print as JSON')
    .action((opts: { dataDir: string; json?: boolean }) => {
      const loaded = loadConfig(absDir(opts.dataDir));
      const rows = Object.entries(loaded.config.sources).flatMap(([id, s]) => (s.type === 'serial' ? Object.entries(s.attest_keys).map(([device, key]) => ({ source: id, device, public_key: key })) : []));
      if (opts.json) printJson(rows);
      else process.stdout.write(rows.length === 0 ? 'no sensor keys registered\n' : rows.map((r) => `${r.source}  ${r.device}  ${r.public_key}\n`).join(''));
    });
  cmd
    .command('export')
    .description("print this gateway's entry for the network's sensor key registry (`edge-agent receive --sensor-keys FILE`): device did:key -> board uid -> public key")
    .addOption(dataDirOption())
    .option('--json', 'print as JSON (the same map)')
    .action((opts: { dataDir: string; json?: boolean }) => {
      const loaded = loadConfig(absDir(opts.dataDir));
      const device = readKeyFile(resolve(loaded.dataDir, loaded.config.device.key_file)).deviceId;
      const boards: Record<string, string> = {};
      for (const [id, s] of Object.entries(loaded.config.sources)) {
        if (s.type !== 'serial') continue;
        for (const [uid, key] of Object.entries(s.attest_keys)) {
          if (boards[uid] !== undefined && boards[uid] !== key) throw new AgentError('USAGE', `board ${uid} has two different keys (source ${id} and another serial source) in ${loaded.path}; keep one`);
          boards[uid] = key;
        }
      }
      if (Object.keys(boards).length === 0) throw new AgentError('USAGE', `no sensor keys registered in ${loaded.path}; run \`edge-agent sensor-key generate\` or \`register\` first`);
      const entry = { [device]: boards };
      if (opts.json) printJson(entry);
      else process.stdout.write(`# add to the receiver's --sensor-keys file (YAML), then restart the receiver\n${toYaml(entry)}`);
    });
}
