import type { LoadedConfig } from '../../config/load.js';
import { errorMessage } from '../../errors.js';
import { publicKeyFromDeviceId } from '../../identity/device-id.js';
import { checkHttpEndpoint } from './http-check.js';
import { checkDataDir, checkReceiverKey } from './local-checks.js';
import { checkModels } from './model-check.js';
import type { PluginDoctor } from '../../contracts/plugin.js';
import { SOURCE_PLUGINS } from '../../sources/registry.js';
import { uplinkPlugin } from '../../uplink/registry.js';
import { checkClock, checkDisk, checkSecretFile, secretFilesOf } from './system-checks.js';
import { skip, type CheckResult } from '../../contracts/doctor-check.js';

export interface DoctorOptions {
  minFreeMb: number;
  timeoutMs: number;
  /** Default: inference.models_dir of the config, else the models shipped with edge-agent. */
  modelsDir?: string;
}

/** Runs every check that applies to this config; network checks run concurrently. */
export async function runDoctor(loaded: LoadedConfig, opts: DoctorOptions): Promise<CheckResult[]> {
  const { config } = loaded;
  const results: CheckResult[] = [];
  const guard = async (check: string, subject: string, fn: () => CheckResult | Promise<CheckResult>): Promise<CheckResult> => {
    try {
      return await fn();
    } catch (err) {
      // A check that throws is a finding too, never a crash of the doctor.
      return { check, subject, status: 'fail', detail: `the check itself failed: ${errorMessage(err)}`, fix: 'report this with the output of edge-agent doctor --json' };
    }
  };

  // Each plugin brings its own check (sources/*/plugin.ts, uplink/*/plugin.ts): local ones first, then the network ones concurrently.
  const env = { resolvePath: loaded.resolvePath, timeoutMs: opts.timeoutMs };
  const withDoctor = SOURCE_PLUGINS.flatMap((p) => (p.doctor ? [{ type: p.type, doctor: p.doctor as PluginDoctor<unknown> }] : []));
  const runChecks = (doctor: PluginDoctor<unknown>, type: string) =>
    Object.entries(config.sources)
      .filter(([, s]) => s.type === type)
      .map(([id, s]) => guard(doctor.check, id, () => doctor.run(id, s, env)));
  const reportOf = async (doctor: PluginDoctor<unknown>, checks: Promise<CheckResult>[]) => (checks.length > 0 ? Promise.all(checks) : [skip(doctor.check, '-', doctor.none)]);
  for (const { type, doctor } of withDoctor.filter((p) => !p.doctor.network)) {
    for (const check of runChecks(doctor, type)) results.push(await check);
    if (!Object.values(config.sources).some((s) => s.type === type)) results.push(skip(doctor.check, '-', doctor.none));
  }
  const network = withDoctor.filter((p) => p.doctor.network).map(({ type, doctor }) => reportOf(doctor, runChecks(doctor, type)));
  const uplink = config.uplink;
  const uplinkDoctor = uplink ? (uplinkPlugin(uplink.type).doctor as PluginDoctor<unknown> | undefined) : undefined;
  const uplinkCheck = uplink && uplinkDoctor ? guard(uplinkDoctor.check, uplink.url, () => uplinkDoctor.run('uplink', uplink, env)) : undefined;
  for (const report of await Promise.all(network)) results.push(...report);
  if (uplinkCheck) results.push(await uplinkCheck);
  // wire-format.md §7: a receiver publishes its key at GET /v1/receiver; a receiver_key that differs refuses every receipt.
  if (uplink?.type === 'http') results.push(await guard('receiver-key', uplink.url, () => checkReceiverKey(uplink.url, uplink.receiver_key, opts.timeoutMs)));
  if (!config.uplink) results.push(skip('uplink', '-', 'no uplink configured: batches stay on this gateway'));

  if (config.http) {
    const http = config.http;
    results.push(await guard('http', http.listen, () => checkHttpEndpoint(http, opts.timeoutMs)));
  } else results.push(skip('http', '-', 'no health endpoint configured (http)'));
  results.push(await guard('data-dir', loaded.dataDir, () => checkDataDir(loaded.dataDir, loaded.resolvePath(config.store.path))));
  results.push(await guard('clock', 'gateway clock', () => checkClock(config.clock.synced)));
  results.push(await guard('disk', loaded.dataDir, () => checkDisk(loaded.dataDir, loaded.resolvePath(config.store.path), opts.minFreeMb)));
  for (const { key, path } of secretFilesOf(config)) results.push(await guard('key-permissions', path, () => checkSecretFile(key, loaded.resolvePath(path))));
  try {
    // The models the agent would run: --models-dir, else the config's, else the shipped ones.
    const inf = config.inference;
    const modelsDir = opts.modelsDir ?? (inf?.models_dir ? loaded.resolvePath(inf.models_dir) : undefined);
    results.push(...(await checkModels(modelsDir, inf?.publisher_key ? publicKeyFromDeviceId(inf.publisher_key) : undefined)));
  } catch (err) {
    results.push({ check: 'models', subject: '-', status: 'fail', detail: `the check itself failed: ${errorMessage(err)}`, fix: 'report this with the output of edge-agent doctor --json' });
  }
  return results;
}
