import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Identity, writeKeyFile } from '../../../agent/identity/keys.js';

/** The repository root, found from this file whether it runs from TypeScript source or dist/. */
function repoRoot(): string {
  let dir = import.meta.dirname;
  while (!existsSync(join(dir, 'package.json')) || dir.endsWith('/dist')) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${import.meta.dirname}`);
    dir = up;
  }
  return dir;
}

export const ROOT = repoRoot();
export const CLI = join(ROOT, 'dist/agent/cli/main.js');
const SCRIPTS = join(ROOT, 'scripts/fleet');

export interface Fleet {
  dir: string;
  natsUrls: string;
  postgresUrl: string;
  /** scripts/fleet/ctl.sh: start, stop or kill nats-1..3 or pg; several names at once. */
  ctl(action: 'start' | 'stop' | 'kill', ...names: string[]): void;
  down(): void;
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** A 3-node JetStream cluster and PostgreSQL, started by scripts/fleet/up.sh as an operator would. */
export function fleetUp(): Fleet {
  const dir = mkdtempSync(join(tmpdir(), 'edge-fleet-'));
  const out = run('bash', [join(SCRIPTS, 'up.sh'), dir]);
  const env = Object.fromEntries(
    out
      .split('\n')
      .filter((l) => /^FLEET_\w+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  if (!env.FLEET_NATS_URLS || !env.FLEET_POSTGRES_URL) throw new Error(`up.sh printed no settings: ${out}`);
  return {
    dir,
    natsUrls: env.FLEET_NATS_URLS,
    postgresUrl: env.FLEET_POSTGRES_URL,
    ctl: (action, ...names) => void run('bash', [join(SCRIPTS, 'ctl.sh'), dir, action, ...names]),
    down: () => void run('bash', [join(SCRIPTS, 'down.sh'), dir]),
  };
}

/** The network's receiver key, made once and shared by every replica (docs/fleet.md). */
export function makeReceiverKey(dir = mkdtempSync(join(tmpdir(), 'edge-fleet-key-'))): { file: string; identity: Identity } {
  const identity = Identity.generate();
  const file = join(dir, 'receiver.key');
  writeKeyFile(file, identity, false);
  return { file, identity };
}

export interface Replica {
  name: string;
  url: string;
  proc: ChildProcess;
  output(): string;
  /** Resolves when the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** `edge-agent receive --backend fleet` as a child process; resolves once it listens. */
export async function startReplica(fleet: Fleet, name: string, keyFile: string, extra: string[] = []): Promise<Replica> {
  const dataDir = mkdtempSync(join(tmpdir(), `edge-replica-${name}-`));
  const args = [CLI, 'receive', '--backend', 'fleet', '--listen', '127.0.0.1:0', '-d', dataDir, '--receiver-key', keyFile,
    '--nats-url', fleet.natsUrls, '--postgres-url', fleet.postgresUrl, '--replica-name', name, '--rate-limit', '0', '--log-level', 'info', ...extra];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 400_000) out = out.slice(-200_000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<void>((res) => proc.once('exit', () => res()));
  const url = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`replica ${name} did not start within 60 s: ${out.slice(-3000)}`)), 60_000);
    const look = () => {
      const m = /receiver listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stdout!.off('data', look);
        res(m[1]!.replace(/\/$/, ''));
      }
    };
    proc.stdout!.on('data', look);
    void exited.then(() => {
      clearTimeout(timer);
      rej(new Error(`replica ${name} exited (${proc.exitCode ?? proc.signalCode}): ${out.slice(-3000)}`));
    });
  });
  return {
    name,
    url,
    proc,
    output: () => out,
    stop: (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

export const resolveDist = (rel: string) => resolve(ROOT, 'dist', rel);
export const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as unknown;

/** Empties the query store and the log between benchmark runs (never used on a real fleet). */
export async function resetFleet(fleet: Fleet): Promise<void> {
  const [{ default: pg }, { connect }] = await Promise.all([import('pg'), import('nats')]);
  const client = new pg.Client({ connectionString: fleet.postgresUrl });
  await client.connect();
  try {
    const { rows } = await client.query("SELECT to_regclass('batches') IS NOT NULL AS ok");
    if (rows[0]?.ok) await client.query('TRUNCATE devices, batches, receipts, readings, verdicts, events, counters');
  } finally {
    await client.end();
  }
  const nc = await connect({ servers: fleet.natsUrls.split(',') });
  try {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.purge('EDGE_BATCHES').catch((err: Error) => {
      if (!/stream not found/i.test(err.message)) throw err;
    });
  } finally {
    await nc.close();
  }
}
