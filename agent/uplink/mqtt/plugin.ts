import { readSecretFile } from '../../util/secret-file.js';
import { loadTlsOptions } from '../../util/tls.js';
import type { UplinkPlugin } from '../plugin.js';
import { defaultUplinkClientId, mqttUplinkSchema, topicFor } from './config.js';

/** MQTT uplink: publishes each signed batch with QoS 1 to an upstream broker (README.md). */
export const mqttUplinkPlugin: UplinkPlugin<typeof mqttUplinkSchema> = {
  type: 'mqtt',
  schema: mqttUplinkSchema,
  urlSchemes: ['mqtt', 'mqtts'],
  async load() {
    const { MqttUplink } = await import('./mqtt-uplink.js');
    return (cfg, ctx) => {
      const password = cfg.password_file ? readSecretFile(ctx.resolvePath(cfg.password_file), 'uplink.password_file', ctx.log) : undefined;
      const tls = cfg.url.startsWith('mqtts://') ? { tls: loadTlsOptions(cfg.tls, 'uplink.tls', ctx.resolvePath, ctx.log) } : {};
      return new MqttUplink(
        {
          url: cfg.url,
          topic: topicFor(cfg.topic, ctx.deviceId),
          replyTopic: topicFor(cfg.reply_topic, ctx.deviceId),
          clientId: cfg.client_id ?? defaultUplinkClientId(ctx.deviceId),
          ...(cfg.username !== undefined ? { username: cfg.username } : {}),
          ...(password !== undefined ? { password } : {}),
          sessionExpiryS: cfg.session_expiry_s,
          keepaliveS: cfg.keepalive_s,
          timeoutMs: cfg.timeout_ms,
          reconnectInitialMs: cfg.retry_initial_ms,
          reconnectMaxMs: cfg.retry_max_ms,
          ...(ctx.receiverKey ? { receiverKey: ctx.receiverKey } : {}),
          ...(ctx.onUpdate ? { onUpdate: ctx.onUpdate } : {}),
          ...tls,
        },
        ctx.log,
      );
    };
  },
  doctor: {
    check: 'uplink',
    network: true,
    none: 'no uplink configured: batches stay on this gateway',
    async run(_id, cfg, env) {
      const { checkBroker } = await import('../../sources/mqtt/doctor-check.js');
      return checkBroker({ check: 'uplink', where: 'uplink', ...cfg }, env.resolvePath, env.timeoutMs);
    },
  },
};
