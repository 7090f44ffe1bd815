import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { loadTlsOptions } from '../util/tls.js';
import { AgentError, errorMessage } from '../errors.js';
import { deviceIdFromPublicKey } from '../identity/device-id.js';
import { createLogger, LOG_LEVELS, type Logger } from '../log.js';
import type { ReceiverOptions, RunningReceiver } from '../receiver/server.js';
import type { FleetFlags } from '../receiver/fleet/flags.js';
import { SensorKeyRegistry } from '../receiver/sensor-key-registry.js';
import { absDir, parseHostPort, parseLogLevel, stopOnSignal } from './common.js';
import { isPermissionError, permissionError } from '../util/file-access.js';
import { urlPortProblem } from '../util/port-range.js';

interface ReceiveOptions extends FleetFlags {
  backend: string;
  listen: string;
  dataDir: string;
  logLevel: string;
  tlsCert?: string;
  tlsKey?: string;
  rateLimit: string;
  rateBurst?: string;
  mqttUrl?: string;
  mqttTopic: string;
  mqttReplyTopic: string;
  mqttCaFile?: string;
  mqttCertFile?: string;
  mqttKeyFile?: string;
  sensorKeys?: string;
}

function readFlagFile(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new AgentError('USAGE', `${flag}: cannot read ${path}: ${errorMessage(err)}`, { cause: err });
  }
}

function nonNegative(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new AgentError('USAGE', `${flag}: expected a number >= 0, got "${value}"`);
  return n;
}

/** Turns the flags into receiver options; every problem names its flag. */
function receiverOptions(opts: ReceiveOptions, log: Logger): Omit<ReceiverOptions, 'host' | 'port' | 'dataDir' | 'logger'> {
  const out: Omit<ReceiverOptions, 'host' | 'port' | 'dataDir' | 'logger'> = { ratePerS: nonNegative(opts.rateLimit, '--rate-limit') };
  if (opts.rateBurst !== undefined) out.rateBurst = Math.max(1, nonNegative(opts.rateBurst, '--rate-burst'));
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw new AgentError('USAGE', '--tls-cert and --tls-key go together');
  if (opts.tlsCert && opts.tlsKey) out.tls = { cert: readFlagFile(opts.tlsCert, '--tls-cert'), key: readFlagFile(opts.tlsKey, '--tls-key') };
  // §12.9 step 11; loaded here so a bad file stops the start with its file:key error.
  if (opts.sensorKeys) out.sensorKeys = SensorKeyRegistry.load(opts.sensorKeys);
  if (opts.mqttUrl) {
    if (!/^mqtts?:\/\/[^/\s]+$/.test(opts.mqttUrl)) throw new AgentError('USAGE', `--mqtt-url: expected mqtt://HOST:PORT or mqtts://HOST:PORT, got "${opts.mqttUrl}"`);
    const badPort = urlPortProblem(opts.mqttUrl);
    if (badPort) throw new AgentError('USAGE', `--mqtt-url: ${badPort}`);
    const tlsConfig = {
      insecure_skip_verify: false,
      ...(opts.mqttCaFile ? { ca_file: opts.mqttCaFile } : {}),
      ...(opts.mqttCertFile ? { cert_file: opts.mqttCertFile } : {}),
      ...(opts.mqttKeyFile ? { key_file: opts.mqttKeyFile } : {}),
    };
    const tls = opts.mqttUrl.startsWith('mqtts://') ? { tls: loadTlsOptions(tlsConfig, '--mqtt', (p) => p, log) } : {};
    out.mqtt = { url: opts.mqttUrl, topic: opts.mqttTopic, replyTopic: opts.mqttReplyTopic, ...tls };
  }
  return out;
}

/** Runs the reference receiver until SIGINT/SIGTERM, then closes the server and its database. */
async function runReceiver(opts: ReceiveOptions): Promise<void> {
  const { host, port } = parseHostPort(opts.listen, '--listen');
  const log = createLogger(parseLogLevel(opts.logLevel) ?? 'info');
  const extra = receiverOptions(opts, log);
  if (opts.backend !== 'sqlite' && opts.backend !== 'fleet') throw new AgentError('USAGE', `--backend: expected sqlite or fleet, got "${opts.backend}"`);
  const dataDir = absDir(opts.dataDir);
  let receiver: RunningReceiver;
  const { startReceiver } = await import('../receiver/server.js');
  const fleet = opts.backend === 'fleet' ? await import('../receiver/fleet/start.js') : undefined;
  try {
    const logger = log.child({ component: 'receiver' });
    receiver = fleet ? await fleet.startFleetReceiver(opts, { host, port, dataDir, logger, ...extra }) : await startReceiver({ host, port, dataDir, logger, ...extra });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (err instanceof AgentError || typeof code !== 'string') throw err;
    // The data dir or a file in it, not the address: named with its owner, mode and the fix.
    const path = (err as NodeJS.ErrnoException).path;
    if (isPermissionError(err) && typeof path === 'string') throw permissionError(path, 'write', absDir(opts.dataDir), err);
    // EADDRINUSE, EADDRNOTAVAIL, EACCES, ENOTFOUND...: the --listen value cannot be used here.
    throw new AgentError('USAGE', `--listen ${opts.listen}: cannot listen (${errorMessage(err)})`, { cause: err });
  }
  process.stdout.write(`receiver listening on ${receiver.url} public key ${deviceIdFromPublicKey(receiver.publicKey)}\n`);

  await stopOnSignal(log, 'receiver', () => receiver.close());
  log.info('receiver stopped');
}

export function registerReceiveCommand(program: Command): void {
  program
    .command('receive')
    .description('run the reference receiver: verify signed batches over HTTP(S) and/or MQTT, store them, answer with signed receipts')
    .requiredOption('--listen <host:port>', 'address to listen on: HOST:PORT or [IPv6]:PORT (port 0 picks a free one)')
    .requiredOption('-d, --data-dir <dir>', 'directory for the receiver key, public key and database (created if missing)')
    .option('--backend <name>', 'where batches are kept: sqlite (one process, DATA_DIR/receiver.db) or fleet (replicas over NATS JetStream + PostgreSQL, docs/fleet.md)', 'sqlite')
    .option('--nats-url <urls>', 'fleet: the JetStream cluster, nats://HOST:PORT[,nats://HOST:PORT...]')
    .option('--postgres-url <url>', 'fleet: the query store, postgres://USER@HOST:PORT/DB (password in PGPASSFILE)')
    .option('--receiver-key <file>', "fleet: the network's receiver key, the same file on every replica (default DATA_DIR/receiver.key)")
    .option('--init-key', 'fleet: create the receiver key if it does not exist (once; then copy it to every replica)')
    .option('--replica-name <name>', 'fleet: this replica in logs, NATS and its MQTT client id (default HOSTNAME-PID)')
    .option('--stream-replicas <n>', 'fleet: copies of each batch the JetStream stream keeps (3 on a 3-node cluster)', '3')
    .option('--stream-max-age-days <n>', 'fleet: days the stream keeps envelopes (PostgreSQL keeps them for good)', '7')
    .option('--pg-pool <n>', 'fleet: PostgreSQL connections of this replica', '8')
    .option('--sensor-keys <file>', "the network's provisioned sensor keys (YAML/JSON: device did:key -> board uid -> public key, `edge-agent sensor-key export` prints a gateway's): attestations under other keys are refused (unknown-sensor-key); without it the origin of sensor keys is unchecked")
    .option('--log-level <level>', `log level (${LOG_LEVELS.join(', ')})`, 'info')
    .option('--tls-cert <file>', 'serve https with this certificate (PEM); needs --tls-key')
    .option('--tls-key <file>', 'private key (PEM) of --tls-cert')
    .option('--rate-limit <n>', 'batches per second accepted per source address (token bucket; 429 with Retry-After beyond); 0 = no limit', '50')
    .option('--rate-burst <n>', 'bucket size: batches a client may send at once before the rate applies (default 2 x --rate-limit)')
    .option('--mqtt-url <url>', 'also take batches from this broker (mqtt://HOST:PORT or mqtts://...), for agents with an mqtt uplink')
    .option('--mqtt-topic <filter>', 'topic filter the agents publish batches on', 'edge/+/batches')
    .option('--mqtt-reply-topic <topic>', 'where answers go; {device} is the device id from the verified signature', 'edge/{device}/receipts')
    .option('--mqtt-ca-file <file>', 'CA (PEM) that signs the broker certificate, for mqtts://')
    .option('--mqtt-cert-file <file>', 'client certificate (PEM) for mutual TLS with the broker')
    .option('--mqtt-key-file <file>', 'private key (PEM, mode 0600) of --mqtt-cert-file')
    .action((opts: ReceiveOptions) => runReceiver(opts));
}
