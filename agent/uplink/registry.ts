import type { UplinkConfig } from '../config/schema.js';
import { readSecretFile } from '../util/secret-file.js';
import { loadTlsOptions } from '../util/tls.js';
import type { Logger } from '../log.js';
import { HttpUplink } from './http/http-uplink.js';
import { defaultUplinkClientId, topicFor } from './mqtt/config.js';
import { MqttUplink } from './mqtt/mqtt-uplink.js';
import type { Uplink } from './uplink.js';

export interface UplinkContext {
  deviceId: string;
  /** Parsed uplink.receiver_key, when set. */
  receiverKey?: Uint8Array;
  resolvePath(p: string): string;
  log: Logger;
}

/** One line per uplink type. */
export function createUplink(cfg: UplinkConfig, ctx: UplinkContext): Uplink {
  const receiverKey = ctx.receiverKey ? { receiverKey: ctx.receiverKey } : {};
  if (cfg.type === 'http') {
    const tls = cfg.url.startsWith('https://') ? { tls: loadTlsOptions(cfg.tls, 'uplink.tls', ctx.resolvePath, ctx.log) } : {};
    return new HttpUplink({ url: cfg.url, timeoutMs: cfg.timeout_ms, ...receiverKey, ...tls });
  }
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
      ...receiverKey,
      ...tls,
    },
    ctx.log,
  );
}
