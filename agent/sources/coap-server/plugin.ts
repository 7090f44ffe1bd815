import type { SourcePlugin } from '../plugin.js';
import { coapServerSourceSchema, splitListen } from './config.js';

/** CoAP server source: sensors POST readings (RFC 7252), answered 2.04 only after the commit (README.md). */
export const coapServerSourcePlugin: SourcePlugin<typeof coapServerSourceSchema> = {
  type: 'coap-server',
  schema: coapServerSourceSchema,
  async load() {
    const { CoapServerSource } = await import('./coap-server-source.js');
    return (cfg, ctx) => new CoapServerSource(cfg, ctx);
  },
  init: {
    flags: [{ flags: '--coap-listen <host:port>', description: 'accept readings POSTed by CoAP sensors on this address (e.g. 127.0.0.1:5683)' }],
    configs: (flags) => (flags.coapListen ? { coap: { type: 'coap-server', listen: flags.coapListen } } : {}),
  },
  // Its UDP port free, or held by the agent running on this data dir (issue 12: a taken port left an agent without inputs).
  doctor: {
    check: 'coap',
    network: false,
    none: 'no CoAP server source configured',
    async run(id, cfg, env) {
      const { checkUdpListen } = await import('./doctor-check.js');
      const { host, port } = splitListen(cfg.listen);
      return checkUdpListen(id, host, port, env.resolvePath('.'));
    },
  },
};
