import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { pinned } from './cores.js';
import { sleep } from './stats.js';
import { AGENT_ENV, AGENT_NODE_OPTIONS } from '../../../agent/run/heap-tuning.js';

export const CLI = resolve(import.meta.dirname, '../../../agent/cli/main.js');

export const tempDir = (prefix: string) => mkdtempSync(join(tmpdir(), `ea-bench-${prefix}-`));

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await probe())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const accepting = (port: number) =>
  new Promise<boolean>((res) => {
    const s = connect(port, '127.0.0.1', () => {
      s.destroy();
      res(true);
    });
    s.on('error', () => res(false));
  });

/** A background process whose output is kept, so a failure can say why. */
export interface Proc {
  proc: ChildProcess;
  pid: number;
  output(): string;
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function startProc(core: number, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const [c, a] = pinned(core, cmd, args);
  const proc = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  return {
    proc,
    pid: proc.pid!,
    output: () => out,
    async waitFor(re, timeoutMs = 20_000) {
      let m: RegExpMatchArray | null = null;
      await until(`${re} from ${cmd}: ${out.slice(-2000)}`, () => {
        m = out.match(re);
        if (m === null && proc.exitCode !== null) throw new Error(`${cmd} exited with ${proc.exitCode}: ${out.slice(-2000)}`);
        return m !== null;
      }, timeoutMs);
      return m!;
    },
    stop(signal = 'SIGTERM') {
      return new Promise((res) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return res();
        proc.once('exit', () => res());
        proc.kill(signal);
      });
    },
  };
}

/** A real mosquitto on a free loopback port, with no queue limit (the agent's session must not lose messages). */
export async function startBroker(core: number): Promise<{ port: number; url: string; proc: Proc }> {
  const port = await freePort();
  const dir = tempDir('mosq');
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\npersistence false\nset_tcp_nodelay true\n`);
  const proc = startProc(core, 'mosquitto', ['-c', conf]);
  await until(`mosquitto on ${port}`, () => accepting(port));
  return { port, url: `mqtt://127.0.0.1:${port}`, proc };
}

export interface Receiver {
  proc: Proc;
  url: string;
  readings(): Promise<number>;
  stats(): Promise<Record<string, number>>;
}

/** `edge-agent receive` (the reference receiver: verifies every batch, stores it, signs a receipt). */
export async function startReceiver(core: number, nodeArgs: string[] = []): Promise<Receiver> {
  const proc = startProc(core, process.execPath, [...nodeArgs, CLI, 'receive', '--listen', '127.0.0.1:0', '--data-dir', tempDir('receiver'), '--log-level', 'warn']);
  const m = await proc.waitFor(/receiver listening on (http:\/\/\S+)/);
  const base = m[1]!.replace(/\/$/, '');
  const stats = async () => (await (await fetch(`${base}/v1/stats`)).json()) as Record<string, number>;
  return { proc, url: `${base}/v1/batches`, stats, readings: async () => (await stats()).readings ?? 0 };
}

/** A data dir made by `edge-agent init` as an operator would, then config keys edited. */
export function initAgent(mqttUrl: string, uplinkUrl: string | undefined, edits: [string[], unknown][] = []): string {
  const dir = tempDir('agent');
  const args = [CLI, 'init', '--data-dir', dir, '--mqtt-url', mqttUrl, '--mqtt-topic', 'sensors/#'];
  if (uplinkUrl) args.push('--uplink-url', uplinkUrl);
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`edge-agent init failed: ${r.stderr}`);
  const file = join(dir, 'edge-agent.yaml');
  const doc = parseDocument(readFileSync(file, 'utf8'));
  for (const [path, value] of edits) doc.setIn(path, value);
  writeFileSync(file, doc.toString());
  return dir;
}

/**
 * `edge-agent run` as the agent is installed: with the node options and environment of its systemd
 * unit and image (AGENT_NODE_OPTIONS, AGENT_ENV), then `nodeArgs` such as --cpu-prof and `env`, which
 * may override them.
 */
export function startAgentProc(core: number, dataDir: string, env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []): Proc {
  return startProc(core, process.execPath, [...AGENT_NODE_OPTIONS, ...nodeArgs, CLI, 'run', '--data-dir', dataDir], { ...AGENT_ENV, ...env });
}

/**
 * `edge-agent run` on `core` (startAgentProc); resolves once it is subscribed and running. Models load
 * while the sources connect (score-slot.ts) and 'agent running' is logged once they are in, so a run
 * measures an agent that is up: the backlog run's RSS baseline, taken 500 ms after the broker connect,
 * missed onnxruntime's ~6 MiB on a faster start and counted it as growth (3 Dec).
 */
export async function startAgent(core: number, dataDir: string, env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []): Promise<Proc> {
  const agent = startAgentProc(core, dataDir, env, nodeArgs);
  await agent.waitFor(/connected to broker/);
  await agent.waitFor(/agent running/, 60_000);
  return agent;
}

export { until };
