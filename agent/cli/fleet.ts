import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { AgentError, errorMessage } from '../errors.js';
import { collect, isoTime, printJson } from './common.js';

const FLEET_TIMEOUT_MS = 10_000;

async function call(url: string, init?: RequestInit): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(FLEET_TIMEOUT_MS) });
  } catch (err) {
    throw new AgentError('BACKEND_UNREACHABLE', `${url}: ${errorMessage(err)}; is edge-agent receive running there?`);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new AgentError('BACKEND_UNREACHABLE', `${url} answered ${res.status} without JSON: ${text.slice(0, 200)}`);
  }
  if (!res.ok) throw new AgentError('USAGE', `${url} refused (${res.status}): ${(json as { detail?: string }).detail ?? text.slice(0, 200)}`);
  return json;
}

interface FleetView {
  bundles: { id: string; version: string; kind: string; rollout: unknown; at: number }[];
  devices: { device: string; models?: string; config_version?: string; heartbeat_at?: number; updates: Record<string, { outcome: string; version: string; reason?: string; at: number }> }[];
}

/** `edge-agent fleet publish|status`: a bundle to one device, a list or a percentage, through a receiver; who runs what (docs/updates.md §7). */
export function registerFleetCommand(program: Command): void {
  const fleet = program.command('fleet').description('publish signed update bundles through a receiver and see who runs what');
  fleet
    .command('publish')
    .description('offer a bundle (edge-agent update bundle) to devices: each gets it in the answer to its next batch')
    .requiredOption('--receiver <url>', 'the receiver, e.g. http://127.0.0.1:8080 (publishing is taken from loopback only)')
    .requiredOption('--bundle <file>', 'the signed bundle')
    .option('--device <did>', 'offer it to this device (repeatable)', collect)
    .option('--percent <n>', 'offer it to this share of devices (1-100), chosen by a stable hash of bundle id and device')
    .option('--json', 'print the answer as JSON')
    .action(async (flags: { receiver: string; bundle: string; device?: string[]; percent?: string; json?: boolean }) => {
      if ((flags.device === undefined) === (flags.percent === undefined)) throw new AgentError('USAGE', 'fleet publish: give --device DID (repeatable) or --percent N');
      const percent = flags.percent === undefined ? undefined : Number(flags.percent);
      if (percent !== undefined && !(percent > 0 && percent <= 100)) throw new AgentError('USAGE', `--percent: expected a number in (0, 100], got "${flags.percent}"`);
      let bundle: string;
      try {
        bundle = readFileSync(resolve(flags.bundle)).toString('base64');
      } catch (err) {
        throw new AgentError('USAGE', `--bundle: ${errorMessage(err)} (make one with edge-agent update bundle)`);
      }
      const body = JSON.stringify(flags.device ? { bundle, devices: flags.device } : { bundle, percent });
      const answer = (await call(`${flags.receiver.replace(/\/+$/, '')}/v1/updates`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })) as { id: string; version: string };
      if (flags.json) return printJson(answer);
      process.stdout.write(`published bundle ${answer.id} ${answer.version} to ${flags.device ? `${flags.device.length} device(s)` : `${percent}% of devices`}\n`);
    });
  fleet
    .command('status')
    .description('per device: the models and config version of its last heartbeat, and what became of each bundle offered')
    .requiredOption('--receiver <url>', 'the receiver, e.g. http://127.0.0.1:8080')
    .option('--json', 'machine-readable output')
    .action(async (flags: { receiver: string; json?: boolean }) => {
      const view = (await call(`${flags.receiver.replace(/\/+$/, '')}/v1/fleet`)) as FleetView;
      if (flags.json) return printJson(view);
      for (const b of view.bundles) process.stdout.write(`bundle ${b.id} ${b.version} (${b.kind}) published ${isoTime(b.at)}\n`);
      for (const d of view.devices) {
        process.stdout.write(`${d.device}\n  models ${d.models ?? '-'}, config ${d.config_version ?? '-'}, heartbeat ${d.heartbeat_at ? isoTime(d.heartbeat_at) : '-'}\n`);
        for (const [id, u] of Object.entries(d.updates)) process.stdout.write(`  ${id} ${u.version}: ${u.outcome}${u.reason ? ` (${u.reason})` : ''} at ${isoTime(u.at)}\n`);
      }
    });
}
