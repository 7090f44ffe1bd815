import type { IClientOptions, MqttClient } from 'mqtt';
import { MQTT_CLIENT_MEMORY } from './mqtt-memory.js';
import { disableNagle } from './mqtt-no-delay.js';

/**
 * The MQTT client of a side output (alert publisher, Home Assistant discovery): MQTT 5, a clean
 * session (it keeps no subscriptions), reconnecting every 2 s; `connect` carries the broker's
 * credentials and TLS, `extra` e.g. a last will. mqtt.js is loaded only when a side output is on.
 */
export async function connectSideClient(url: string, clientId: string, connect: Partial<IClientOptions>, extra: Partial<IClientOptions> = {}): Promise<MqttClient> {
  const mqtt = await import('mqtt');
  const client = mqtt.connect(url, { ...MQTT_CLIENT_MEMORY, clientId, protocolVersion: 5, clean: true, reconnectPeriod: 2000, connectTimeout: 10_000, ...connect, ...extra });
  disableNagle(client);
  return client;
}
