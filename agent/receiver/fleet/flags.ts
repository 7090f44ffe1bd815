import { existsSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { AgentError } from '../../errors.js';
import { Identity, readKeyFile, writeKeyFile } from '../../identity/keys.js';
import type { Logger } from '../../log.js';
import { RECEIVER_KEY_FILE } from '../server.js';
import type { FleetBackendOptions } from './fleet-backend.js';

/** The `edge-agent receive` flags of the fleet backend, as commander hands them over. */
export interface FleetFlags {
  natsUrl?: string;
  postgresUrl?: string;
  receiverKey?: string;
  initKey?: boolean;
  replicaName?: string;
  streamReplicas: string;
  streamMaxAgeDays: string;
  pgPool: string;
}

function positiveInt(value: string, flag: string, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new AgentError('USAGE', `${flag}: expected a whole number from 1 to ${max}, got "${value}"`);
  return n;
}

/** nats://HOST:PORT[,nats://HOST:PORT...]: at most 32 servers, each a plain URL (credentials go in a creds file, not a flag). */
export function parseNatsServers(value: string | undefined): string[] {
  if (!value) throw new AgentError('USAGE', '--backend fleet needs --nats-url nats://HOST:PORT[,nats://HOST:PORT...] (the JetStream cluster)');
  const servers = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (servers.length === 0 || servers.length > 32) throw new AgentError('USAGE', `--nats-url: expected 1 to 32 comma-separated URLs, got ${servers.length}`);
  for (const s of servers) {
    if (!/^(nats|tls):\/\/[^/\s@]+$/.test(s)) throw new AgentError('USAGE', `--nats-url: "${s}" is not nats://HOST:PORT or tls://HOST:PORT`);
  }
  return servers;
}

function parsePostgresUrl(value: string | undefined): string {
  if (!value) throw new AgentError('USAGE', '--backend fleet needs --postgres-url postgres://USER@HOST:PORT/DB (password in PGPASSFILE, not on the command line)');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new AgentError('USAGE', `--postgres-url: "${value}" is not a URL (postgres://USER@HOST:PORT/DB)`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new AgentError('USAGE', `--postgres-url: expected postgres://..., got ${url.protocol}//...`);
  if (url.password) throw new AgentError('USAGE', '--postgres-url: keep the password out of the command line (ps shows it); put it in a 0600 PGPASSFILE');
  return value;
}

/**
 * The network's receiver key, shared by every replica: receipts from any replica verify with
 * the one public key the gateways are configured with. Never made silently (a replica with its
 * own fresh key would sign receipts nobody accepts); --init-key makes it once.
 */
function receiverIdentity(flags: FleetFlags, dataDir: string): Identity {
  const path = flags.receiverKey ?? join(dataDir, RECEIVER_KEY_FILE);
  if (!existsSync(path)) {
    if (!flags.initKey) {
      throw new AgentError(
        'KEY_NOT_FOUND',
        `receiver key ${path} not found: every fleet replica signs with the network's one receiver key; copy it here (mode 0600), or make it once with --init-key`,
        { exitCode: 2 },
      );
    }
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    writeKeyFile(path, Identity.generate(), false);
  }
  return readKeyFile(path);
}

export function fleetOptionsFromFlags(flags: FleetFlags, dataDir: string, logger: Logger): FleetBackendOptions {
  return {
    natsServers: parseNatsServers(flags.natsUrl),
    postgresUrl: parsePostgresUrl(flags.postgresUrl),
    streamReplicas: positiveInt(flags.streamReplicas, '--stream-replicas', 5),
    streamMaxAgeMs: positiveInt(flags.streamMaxAgeDays, '--stream-max-age-days', 3650) * 86_400_000,
    pgPoolSize: positiveInt(flags.pgPool, '--pg-pool', 200),
    replicaName: flags.replicaName ?? `${hostname()}-${process.pid}`,
    identity: receiverIdentity(flags, dataDir),
    logger,
    projectorGraceMs: 5000,
  };
}
