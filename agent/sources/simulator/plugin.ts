import { AgentError } from '../../errors.js';
import type { SourcePlugin } from '../plugin.js';
import { simulatorSourceSchema } from './config.js';

/** Simulated sensors with seeded noise: demos and install checks (README.md). */
export const simulatorSourcePlugin: SourcePlugin<typeof simulatorSourceSchema> = {
  type: 'simulator',
  schema: simulatorSourceSchema,
  async load() {
    const { SimulatorSource } = await import('./simulator-source.js');
    return (cfg, ctx) => new SimulatorSource(cfg, ctx);
  },
  init: {
    flags: [
      {
        flags: '--simulator <n>',
        description: 'add a simulated source with N sensors (demo, install check)',
        parse: (v) => {
          const n = Number(v);
          if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new AgentError('USAGE', `--simulator: expected 1..10000, got "${v}"`);
          return n;
        },
      },
    ],
    configs: (flags) => (flags.simulator !== undefined ? { simulator: { type: 'simulator', sensors: flags.simulator, interval_ms: 1000 } } : {}),
  },
};
