import type { Command } from 'commander';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { isPermissionError, permissionError } from '../util/file-access.js';
import { CONFIG_FILE, loadConfig } from '../config/load.js';
import { configSchema, type AgentConfig } from '../config/schema.js';
import { writeConfig } from '../config/write.js';
import { AgentError } from '../errors.js';
import { publicKeyFromDeviceId } from '../identity/device-id.js';
import { setKeyAside } from '../identity/key-backup.js';
import { storeDevice } from '../store/meta.js';
import { Identity, writeKeyFile } from '../identity/keys.js';
import { recipientBoxKey } from '../identity/seal.js';
import { acquireDataDirLock } from '../store/lock.js';
import { SOURCE_PLUGINS } from '../sources/registry.js';
import { uplinkPluginForUrl } from '../uplink/registry.js';
import { absDir, collect, dataDirOption, printJson } from './common.js';

/** The common flags; each source plugin adds its own (its plugin.ts, `init.flags`). */
interface InitOptions extends Record<string, unknown> {
  dataDir: string;
  mqttUrl?: string;
  uplinkUrl?: string;
  receiverKey?: string;
  /** uplink.encrypt_to: seal every batch to this network key (docs/wire-format.md §12.6). */
  encryptTo?: string;
  anomalySensors?: string[];
  alertTopic?: string;
  haDiscovery?: boolean;
  /** update.publisher_key: take signed remote updates from this publisher (docs/updates.md). */
  updatePublisherKey?: string;
  httpListen?: string;
  /** false with --no-http. */
  http?: boolean;
  force?: boolean;
  json?: boolean;
}

/** The flag that wrote each config key, so that a refused value is reported under the name the user typed. */
const FLAG_OF_KEY: readonly [RegExp, string][] = [
  [/^http\.listen$/, '--http-listen'],
  [/^sources\.mqtt\.url$/, '--mqtt-url'],
  [/^sources\.mqtt\.topics/, '--mqtt-topic'],
  [/^sources\.coap\.listen$/, '--coap-listen'],
  [/^sources\.coap-observe-\d+\.url$/, '--coap-observe'],
  [/^sources\.serial\.path$/, '--serial-path'],
  [/^sources\.serial\.mode$/, '--serial-mode'],
  [/^uplink\.url$/, '--uplink-url'],
  [/^uplink\.receiver_key$/, '--receiver-key'],
  [/^inference\.bindings\.anomaly\.sensors/, '--anomaly-sensors'],
  [/^inference\.alerts/, '--alert-topic'],
  [/^update\.publisher_key/, '--update-publisher-key'],
];

export function buildInitialConfig(opts: InitOptions, identity: Identity): AgentConfig {
  const sources: Record<string, unknown> = {};
  // Each source plugin turns its own flags into source configs (sources/*/plugin.ts).
  for (const plugin of SOURCE_PLUGINS) Object.assign(sources, plugin.init?.configs(opts, identity) ?? {});
  let inference: Record<string, unknown> | undefined;
  if (opts.anomalySensors && opts.anomalySensors.length > 0) {
    inference = {
      bindings: { anomaly: { model: 'stream-ad', sensors: opts.anomalySensors } },
      // Alerts go to the sensors' own broker, where Node-RED or Home Assistant already listen.
      ...(sources.mqtt ? { alerts: { mqtt_source: 'mqtt', ...(opts.alertTopic ? { topic_prefix: opts.alertTopic } : {}) } } : {}),
    };
  } else if (opts.alertTopic) {
    throw new AgentError('USAGE', '--alert-topic needs --anomaly-sensors');
  }
  if (opts.alertTopic && !sources.mqtt) throw new AgentError('USAGE', '--alert-topic needs --mqtt-url (alerts are published on that broker)');
  if (opts.haDiscovery && !sources.mqtt) throw new AgentError('USAGE', '--ha-discovery needs --mqtt-url (Home Assistant listens on that broker)');
  const raw = {
    version: 1,
    device: {},
    store: {},
    batch: {},
    sources,
    clock: {},
    log: {},
    ...(inference ? { inference } : {}),
    ...(opts.haDiscovery ? { home_assistant: { mqtt_source: 'mqtt' } } : {}),
    ...(opts.updatePublisherKey ? { update: { publisher_key: opts.updatePublisherKey } } : {}),
    // The health/metrics/status endpoint is on by default, on loopback (agent/health/config.ts).
    ...(opts.http === false ? {} : { http: { listen: opts.httpListen ?? '127.0.0.1:9464' } }),
    ...(opts.uplinkUrl
      ? {
          uplink: {
            type: uplinkPluginForUrl(opts.uplinkUrl)?.type ?? 'http',
            url: opts.uplinkUrl,
            ...(opts.receiverKey ? { receiver_key: opts.receiverKey } : {}),
            ...(opts.encryptTo ? { encrypt_to: opts.encryptTo } : {}),
          },
        }
      : {}),
  };
  if (opts.http === false && opts.httpListen) throw new AgentError('USAGE', '--http-listen and --no-http contradict each other');
  if (opts.receiverKey && !opts.uplinkUrl) throw new AgentError('USAGE', '--receiver-key needs --uplink-url');
  if (opts.encryptTo && !opts.uplinkUrl) throw new AgentError('USAGE', '--encrypt-to needs --uplink-url (it seals what the uplink sends)');
  if (opts.uplinkUrl && !/^(https?|mqtts?):\/\//.test(opts.uplinkUrl)) {
    throw new AgentError('USAGE', `--uplink-url: expected http(s)://HOST/PATH (a receiver) or mqtt(s)://HOST:PORT (a broker), got "${opts.uplinkUrl}"`);
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = issue.path.join('.');
    const flag = FLAG_OF_KEY.find(([re]) => re.test(key))?.[1];
    throw new AgentError('USAGE', flag ? `${flag}: ${issue.message}` : `invalid flag value for ${key}: ${issue.message}`);
  }
  return parsed.data;
}

/** Where an existing config keeps its key and store (a broken config: the defaults). */
function existingPaths(dir: string): { keyPath: string; storePath: string } {
  try {
    const loaded = loadConfig(dir);
    return { keyPath: loaded.resolvePath(loaded.config.device.key_file), storePath: loaded.resolvePath(loaded.config.store.path) };
  } catch {
    return { keyPath: join(dir, 'device.key'), storePath: join(dir, 'edge-agent.db') };
  }
}

/**
 * The gateway's identity cannot be lost by re-running init (issue 12): never while an agent runs
 * on the data dir, never while a store bound to the key exists (its signed chain would be
 * orphaned), and a replaced key is kept as `<key>.replaced-<time>` (`keys restore` puts it back).
 */
function guardIdentity(dir: string, configPath: string): { release: () => void; keyPath: string } {
  const { keyPath, storePath } = existingPaths(dir);
  let release: () => void;
  try {
    release = acquireDataDirLock(dir);
  } catch (err) {
    if (err instanceof AgentError && err.code === 'LOCKED') throw new AgentError('LOCKED', `refusing to replace the device key: ${err.message}`, { exitCode: 2 });
    throw err;
  }
  if (existsSync(storePath)) {
    release();
    const bound = storeDevice(storePath);
    throw new AgentError(
      'KEY_EXISTS',
      `refusing to replace the device key: ${storePath} holds the signed chain of ${bound ?? 'the current device'}, which a new key would orphan. ` +
        `To keep this identity, edit ${configPath} instead of running init. To start over as a new device, first move the store aside (mv ${storePath} ${storePath}-wal ${storePath}-shm somewhere else) or use another --data-dir`,
      { exitCode: 2 },
    );
  }
  return { release, keyPath };
}

export function runInit(opts: InitOptions): { deviceId: string; configPath: string; keyPath: string; replacedKey?: string } {
  if (opts.receiverKey) {
    try {
      publicKeyFromDeviceId(opts.receiverKey);
    } catch (err) {
      throw new AgentError('USAGE', `--receiver-key: ${(err as Error).message}`);
    }
  }
  if (opts.encryptTo) {
    try {
      // The X25519 form must exist too (§12.6): a did:key that is not a curve point cannot be sealed to.
      recipientBoxKey(publicKeyFromDeviceId(opts.encryptTo));
    } catch (err) {
      throw new AgentError('USAGE', `--encrypt-to: ${(err as Error).message}; give the network's did:key (edge-agent receive prints it)`);
    }
  }
  const dir = absDir(opts.dataDir);
  const configPath = join(dir, CONFIG_FILE);
  if (existsSync(configPath) && !opts.force) {
    throw new AgentError('USAGE', `${configPath} already exists; edit it, or pass --force to write a new one (and a new key)`);
  }
  const identity = Identity.generate();
  const config = buildInitialConfig(opts, identity);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o750 });
  } catch (err) {
    if (isPermissionError(err)) throw permissionError(dir, 'write', undefined, err);
    throw err;
  }
  const keyPath = join(dir, config.device.key_file);
  const guard = opts.force ? guardIdentity(dir, configPath) : undefined;
  try {
    // --force replaces the config, never the identity without a copy: the old key is set aside.
    const replacedKey = opts.force ? (setKeyAside(keyPath) ?? (guard!.keyPath !== keyPath ? setKeyAside(guard!.keyPath) : undefined)) : undefined;
    writeKeyFile(keyPath, identity, opts.force ?? false);
    writeConfig(configPath, config);
    return { deviceId: identity.deviceId, configPath, keyPath, ...(replacedKey ? { replacedKey } : {}) };
  } finally {
    guard?.release();
  }
}

export function registerInitCommand(program: Command): void {
  const init = program.command('init');
  // The source plugins' flags first, in registry order.
  for (const plugin of SOURCE_PLUGINS) for (const f of plugin.init?.flags ?? []) init.option(f.flags, f.description, f.parse as (v: string, p: unknown) => unknown);
  init
    .description('create the device key (ed25519, mode 0600) and a validated config in the data dir')
    .addOption(dataDirOption())
    .option('--uplink-url <url>', 'where to deliver signed batches: http(s)://host:8080/v1/batches, or an MQTT broker mqtt(s)://host:1883 (topic edge/<device id>/batches)')
    .option('--receiver-key <did>', "receiver's public key (did:key); deliveries then need a receipt it signed")
    .option('--encrypt-to <did>', "seal every batch's data to this network key (did:key, usually the receiver's): brokers and relays see only signed headers")
    .option('--http-listen <host:port>', 'health, metrics and status page endpoint (default 127.0.0.1:9464; 0.0.0.0 needs http.bind_all_interfaces in the config)')
    .option('--no-http', 'do not serve /healthz, /metrics and the status page')
    .option('--anomaly-sensors <filter>', "score these sensors with the streaming anomaly detector, e.g. 'pump1/#' or '#' (repeatable)", collect)
    .option('--alert-topic <prefix>', 'publish alert changes under this MQTT topic prefix (default edge-agent/alerts)')
    .option('--update-publisher-key <did>', 'take signed remote updates (model sets, configs) from this publisher key (edge-agent keys generate --publisher prints it); docs/updates.md')
    .option('--ha-discovery', 'announce the agent, its sensors and anomaly alerts to Home Assistant (MQTT discovery on the --mqtt-url broker)')
    .option('--force', 'replace an existing config and device key; the old key is kept as device.key.replaced-<time>. Refused while the agent runs or a store exists')
    .option('--json', 'print the result as JSON')
    .action((opts: InitOptions) => {
      const r = runInit(opts);
      if (opts.json) printJson({ device_id: r.deviceId, config: r.configPath, key: r.keyPath, ...(r.replacedKey ? { replaced_key: r.replacedKey } : {}) });
      else {
        process.stdout.write(`device id ${r.deviceId}\nconfig    ${r.configPath}\nkey       ${r.keyPath} (mode 0600)\n`);
        if (r.replacedKey) process.stdout.write(`the previous key is kept as ${r.replacedKey}; to go back to it: edge-agent keys restore --data-dir ${opts.dataDir} ${r.replacedKey}\n`);
      }
    });
}
