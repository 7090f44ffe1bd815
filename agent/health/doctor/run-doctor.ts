import type { LoadedConfig } from '../../config/load.js';
import { errorMessage } from '../../errors.js';
import { publicKeyFromDeviceId } from '../../identity/device-id.js';
import { splitListen } from '../../sources/coap-server/config.js';
import { checkHttpEndpoint } from './http-check.js';
import { checkDataDir, checkReceiverKey, checkUdpListen } from './local-checks.js';
import { checkModels } from './model-check.js';
import { checkBroker } from './mqtt-check.js';
import { checkSerialDevice } from './serial-check.js';
import { checkClock, checkDisk, checkSecretFile, secretFilesOf } from './system-checks.js';
import { skip, type CheckResult } from './types.js';
import { checkHttpUplink } from './uplink-check.js';

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

  const serial = Object.entries(config.sources).filter(([, s]) => s.type === 'serial');
  for (const [id, s] of serial) if (s.type === 'serial') results.push(await guard('serial', id, () => checkSerialDevice(id, s.path)));
  if (serial.length === 0) results.push(skip('serial', '-', 'no serial source configured'));

  const network: Promise<CheckResult>[] = [];
  const mqtt = Object.entries(config.sources).filter(([, s]) => s.type === 'mqtt');
  for (const [id, s] of mqtt) {
    if (s.type === 'mqtt') network.push(guard('broker', id, () => checkBroker({ check: 'broker', where: `sources.${id}`, ...s }, loaded.resolvePath, opts.timeoutMs)));
  }
  const uplink = config.uplink;
  if (uplink?.type === 'mqtt') network.push(guard('uplink', uplink.url, () => checkBroker({ check: 'uplink', where: 'uplink', ...uplink }, loaded.resolvePath, opts.timeoutMs)));
  if (uplink?.type === 'http') {
    network.push(guard('uplink', uplink.url, () => checkHttpUplink(uplink, loaded.resolvePath, opts.timeoutMs)));
    network.push(guard('receiver-key', uplink.url, () => checkReceiverKey(uplink.url, uplink.receiver_key, opts.timeoutMs)));
  }
  const networkResults = await Promise.all(network);
  results.push(...networkResults.filter((r) => r.check === 'broker'));
  if (mqtt.length === 0) results.push(skip('broker', '-', 'no MQTT source configured'));
  results.push(...networkResults.filter((r) => r.check === 'uplink' || r.check === 'receiver-key'));
  if (!config.uplink) results.push(skip('uplink', '-', 'no uplink configured: batches stay on this gateway'));

  if (config.http) {
    const http = config.http;
    results.push(await guard('http', http.listen, () => checkHttpEndpoint(http, opts.timeoutMs)));
  } else results.push(skip('http', '-', 'no health endpoint configured (http)'));
  const coap = Object.entries(config.sources).filter(([, s]) => s.type === 'coap-server');
  for (const [id, s] of coap) {
    if (s.type !== 'coap-server') continue;
    const { host, port } = splitListen(s.listen);
    results.push(await guard('coap', `sources.${id}.listen`, () => checkUdpListen(id, host, port, loaded.dataDir)));
  }
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
