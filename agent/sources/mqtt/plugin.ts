import { AgentError } from '../../errors.js';
import type { SourcePlugin } from '../plugin.js';
import { mqttSourceSchema } from './config.js';

const collect = (value: string, previous: unknown) => [...((previous as string[] | undefined) ?? []), value];

/** MQTT source: subscribes with QoS 1 on a persistent session, PUBACK only after the commit (README.md). */
export const mqttSourcePlugin: SourcePlugin<typeof mqttSourceSchema> = {
  type: 'mqtt',
  schema: mqttSourceSchema,
  async load() {
    const { MqttSource } = await import('./mqtt-source.js');
    return (cfg, ctx) => new MqttSource(cfg, ctx);
  },
  init: {
    flags: [
      { flags: '--mqtt-url <url>', description: 'MQTT broker to read sensors from, e.g. mqtt://127.0.0.1:1883' },
      { flags: '--mqtt-topic <filter>', description: 'topic filter to subscribe with QoS 1 (repeatable; default sensors/#)', parse: collect },
    ],
    configs(flags, { deviceId }) {
      const topics = flags.mqttTopic as string[] | undefined;
      if (!flags.mqttUrl) {
        if (topics) throw new AgentError('USAGE', '--mqtt-topic needs --mqtt-url');
        return {};
      }
      return {
        mqtt: {
          type: 'mqtt',
          url: flags.mqttUrl,
          topics: topics && topics.length > 0 ? topics : ['sensors/#'],
          // Stable across restarts, unique per device: the broker keeps our persistent session under it.
          client_id: `edge-agent-${deviceId.slice('did:key:z'.length, 'did:key:z'.length + 16)}`,
        },
      };
    },
  },
  doctor: {
    check: 'broker',
    network: true,
    none: 'no MQTT source configured',
    async run(id, cfg, env) {
      const { checkBroker } = await import('./doctor-check.js');
      return checkBroker({ check: 'broker', where: `sources.${id}`, ...cfg }, env.resolvePath, env.timeoutMs);
    },
  },
};
