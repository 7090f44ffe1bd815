import type { SourceConfig } from '../config/schema.js';
import { MqttSource } from './mqtt/mqtt-source.js';
import { SimulatorSource } from './simulator/simulator-source.js';
import type { Source, SourceContext } from './source.js';

/** One line per source plugin: its config `type` and how to make one. */
export function createSource(cfg: SourceConfig, ctx: SourceContext): Source {
  switch (cfg.type) {
    case 'mqtt':
      return new MqttSource(cfg, ctx);
    case 'simulator':
      return new SimulatorSource(cfg, ctx);
  }
}
