import { copyFileSync, existsSync, renameSync, writeFileSync } from 'node:fs';
import { errorMessage } from '../errors.js';
import { loadConfig, parseConfig, type LoadedConfig } from '../config/load.js';
import { UpdateRefused } from '../identity/update-bundle.js';

/**
 * What applying a config changes in the running agent: the keys applied live and those that wait
 * for a restart. The reload path (SIGHUP, issue 16 item 2) implements it; an update calls it
 * after the new file is in place.
 */
export type ReloadHook = (loaded: LoadedConfig) => Promise<{ live: string[]; restart: string[] }>;

/** Where the config an update replaced is kept, for the rollback (and for the operator). */
export const previousConfigPath = (path: string) => `${path}.prev`;

/**
 * docs/updates.md §5 (config): the new config document is validated fully (schema, every key, the
 * same checks as `run`), must keep the device key and the store where they are (an update never
 * moves or wipes local state) and must keep taking updates; only then is it put in place
 * atomically (the old one kept as edge-agent.yaml.prev) and handed to the reload hook.
 */
export async function applyConfig(text: string, current: LoadedConfig, reload: ReloadHook): Promise<{ live: string[]; restart: string[] }> {
  let next;
  try {
    next = parseConfig(text, `${current.path} (update)`);
  } catch (err) {
    throw new UpdateRefused('invalid', `config: ${errorMessage(err)}`);
  }
  const kept: [string, unknown, unknown][] = [
    ['device.key_file', current.config.device.key_file, next.device.key_file],
    ['store.path', current.config.store.path, next.store.path],
  ];
  for (const [key, was, now] of kept) {
    if (was !== now) throw new UpdateRefused('invalid', `config: ${key} changes from ${String(was)} to ${String(now)}; an update never moves the device key or the store`);
  }
  if (next.update?.publisher_key !== current.config.update?.publisher_key) {
    throw new UpdateRefused('invalid', 'config: update.publisher_key would change or go; an update cannot take away or hand over the way updates come (edit it on the gateway)');
  }
  copyFileSync(current.path, previousConfigPath(current.path));
  const tmp = `${current.path}.next-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, current.path);
  try {
    return await reload(loadConfig(current.dataDir));
  } catch (err) {
    await restorePreviousConfig(current, reload);
    throw new UpdateRefused('invalid', `config: the reload refused it (${errorMessage(err)}); the previous config is back`);
  }
}

/** Puts edge-agent.yaml.prev back in place and reloads it (the rollback of a config update). */
export async function restorePreviousConfig(current: LoadedConfig, reload: ReloadHook): Promise<void> {
  const prev = previousConfigPath(current.path);
  if (!existsSync(prev)) return;
  copyFileSync(prev, `${current.path}.restoring`);
  renameSync(`${current.path}.restoring`, current.path);
  await reload(loadConfig(current.dataDir));
}
