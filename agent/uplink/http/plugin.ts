import { loadTlsOptions } from '../../util/tls.js';
import type { UplinkPlugin } from '../plugin.js';
import { httpUplinkSchema } from './config.js';

/** HTTP uplink: POSTs each signed batch to a receiver; delivered on a 2xx (with a verified receipt when receiver_key is set). README.md. */
export const httpUplinkPlugin: UplinkPlugin<typeof httpUplinkSchema> = {
  type: 'http',
  schema: httpUplinkSchema,
  urlSchemes: ['http', 'https'],
  async load() {
    const { HttpUplink } = await import('./http-uplink.js');
    return (cfg, ctx) => {
      const tls = cfg.url.startsWith('https://') ? { tls: loadTlsOptions(cfg.tls, 'uplink.tls', ctx.resolvePath, ctx.log) } : {};
      return new HttpUplink({ url: cfg.url, timeoutMs: cfg.timeout_ms, ...(ctx.receiverKey ? { receiverKey: ctx.receiverKey } : {}), ...(ctx.onUpdate ? { onUpdate: ctx.onUpdate } : {}), ...(ctx.onUpload ? { onUpload: ctx.onUpload } : {}), ...tls });
    };
  },
  doctor: {
    check: 'uplink',
    network: true,
    none: 'no uplink configured: batches stay on this gateway',
    async run(_id, cfg, env) {
      const { checkHttpUplink } = await import('./doctor-check.js');
      return checkHttpUplink(cfg, env.resolvePath, env.timeoutMs);
    },
  },
};
