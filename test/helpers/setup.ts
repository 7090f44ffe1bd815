import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { cliBackground, type LongRunning } from './cli.js';
import { freePort } from './ports.js';

export const tempDir = (prefix: string) => mkdtempSync(join(tmpdir(), `ea-${prefix}-`));

/** Edits keys of an agent's config file in place, as an operator would. */
export function patchConfig(dataDir: string, edits: [path: string[], value: unknown][]): void {
  const file = join(dataDir, 'edge-agent.yaml');
  const doc = parseDocument(readFileSync(file, 'utf8'));
  for (const [path, value] of edits) doc.setIn(path, value);
  writeFileSync(file, doc.toString());
}

export interface RunningReceiver {
  proc: LongRunning;
  port: number;
  baseUrl: string;
  publicKey: string;
  dataDir: string;
  stats(): Promise<{ devices: number; batches: number; readings: number; rejected: number; gaps: number }>;
}

/**
 * `edge-agent receive` as its own process, on a loopback port it binds itself (port 0) and
 * reports on stdout: no port found free by the test and taken by someone else before the bind.
 */
export async function startReceiverProcess(dataDir: string, extraArgs: string[] = []): Promise<RunningReceiver> {
  const proc = cliBackground(['receive', '--listen', '127.0.0.1:0', '--data-dir', dataDir, ...extraArgs]);
  const m = await proc.waitForOutput(/receiver listening on (http:\/\/127\.0\.0\.1:(\d+))\S* public key (did:key:\w+)/);
  const baseUrl = m[1]!;
  const port = Number(m[2]);
  return {
    proc,
    port,
    baseUrl,
    publicKey: m[3]!,
    dataDir,
    stats: async () => (await (await fetch(`${baseUrl}/v1/stats`)).json()) as Awaited<ReturnType<RunningReceiver['stats']>>,
  };
}

export { freePort };
