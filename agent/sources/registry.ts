import type { SourceConfig } from '../config/schema.js';
import { CoapObserveSource } from './coap-observe/coap-observe-source.js';
import { CoapServerSource } from './coap-server/coap-server-source.js';
import { MqttSource } from './mqtt/mqtt-source.js';
import { SerialSource } from './serial/serial-source.js';
import { SimulatorSource } from './simulator/simulator-source.js';
import type { Source, SourceContext } from './source.js';

/** One line per source plugin: its config `type` and how to make one. */
export function createSource(cfg: SourceConfig, ctx: SourceContext): Source {
  switch (cfg.type) {
    case 'mqtt':
      return new MqttSource(cfg, ctx);
    case 'coap-server':
      return new CoapServerSource(cfg, ctx);
    case 'coap-observe':
      return new CoapObserveSource(cfg, ctx);
    case 'serial':
      return new SerialSource(cfg, ctx);
    case 'simulator':
      return new SimulatorSource(cfg, ctx);
  }
}
