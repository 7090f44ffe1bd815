import type { SourcePlugin } from '../plugin.js';
import { coapObserveSourceSchema } from './config.js';

const collect = (value: string, previous: unknown) => [...((previous as string[] | undefined) ?? []), value];

/** CoAP observe source: registers as an observer of a sensor's resource (RFC 7641), polls when it is not observable (README.md). */
export const coapObserveSourcePlugin: SourcePlugin<typeof coapObserveSourceSchema> = {
  type: 'coap-observe',
  schema: coapObserveSourceSchema,
  async load() {
    const { CoapObserveSource } = await import('./coap-observe-source.js');
    return (cfg, ctx) => new CoapObserveSource(cfg, ctx);
  },
  init: {
    flags: [{ flags: '--coap-observe <url>', description: 'observe a CoAP resource, e.g. coap://10.0.0.7/temp (repeatable)', parse: collect }],
    configs: (flags) => Object.fromEntries(((flags.coapObserve as string[] | undefined) ?? []).map((url, i) => [`coap-observe-${i + 1}`, { type: 'coap-observe', url }])),
  },
};
