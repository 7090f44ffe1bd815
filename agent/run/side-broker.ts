import type { IClientOptions } from 'mqtt';
import type { LoadedConfig } from '../config/load.js';
import { AgentError } from '../errors.js';
import type { Logger } from '../log.js';
import { brokerConnectOptions } from '../sources/mqtt/connection.js';

export interface SideBroker {
  url: string;
  connect: Partial<IClientOptions>;
  clientId: string;
}

/**
 * The broker a side output (alerts, Home Assistant discovery) publishes to: its own `url`, or the
 * MQTT source it names (the only one when there is one), reached exactly as that source reaches
 * it: credentials and TLS included. `suffix` makes the client id distinct from the source's.
 */
export function resolveSideBroker(loaded: LoadedConfig, where: string, cfg: { url?: string | undefined; mqtt_source?: string | undefined }, suffix: string, fallbackId: string, log: Logger): SideBroker {
  if (cfg.url !== undefined) return { url: cfg.url, connect: {}, clientId: fallbackId };
  const mqttSources = Object.entries(loaded.config.sources).filter(([, s]) => s.type === 'mqtt');
  const id = cfg.mqtt_source ?? (mqttSources.length === 1 ? mqttSources[0]![0] : undefined);
  const source = mqttSources.find(([sid]) => sid === id)?.[1];
  if (!id || !source || source.type !== 'mqtt') {
    throw new AgentError('CONFIG_INVALID', `${loaded.path}: ${where}: name the broker with url, or mqtt_source (one of: ${mqttSources.map(([sid]) => sid).join(', ') || 'no MQTT source configured'})`);
  }
  return { url: source.url, connect: brokerConnectOptions(source, id, loaded.resolvePath, log), clientId: `${source.client_id.slice(0, 56)}-${suffix}` };
}
