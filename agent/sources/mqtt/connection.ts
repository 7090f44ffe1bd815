import type { IClientOptions } from 'mqtt';
import { readSecretFile } from '../../util/secret-file.js';
import { loadTlsOptions } from '../../util/tls.js';
import type { Logger } from '../../log.js';
import type { MqttSourceConfig } from './config.js';

/**
 * How to reach the broker of MQTT source `id`: credentials and, for mqtts://, TLS. Shared by the
 * source and by whatever else publishes on that broker (the alert publisher), so both connect
 * the same way.
 */
export function brokerConnectOptions(cfg: MqttSourceConfig, id: string, resolvePath: (p: string) => string, log: Logger): Partial<IClientOptions> {
  const options: Partial<IClientOptions> = {};
  if (cfg.username) options.username = cfg.username;
  if (cfg.password_file) options.password = readSecretFile(resolvePath(cfg.password_file), `sources.${id}.password_file`, log);
  if (cfg.url.startsWith('mqtts://')) Object.assign(options, loadTlsOptions(cfg.tls, `sources.${id}.tls`, resolvePath, log));
  return options;
}
