import { z } from 'zod';

export const simulatorSourceSchema = z.strictObject({
  type: z.literal('simulator'),
  /** Number of simulated sensors: sim-01 ... sim-NN. */
  sensors: z.number().int().min(1).max(10_000).default(4),
  interval_ms: z.number().int().min(1).default(1000),
  /** Seed of the pseudo-random noise, so a demo run is reproducible. */
  seed: z.number().int().default(1),
});

export type SimulatorSourceConfig = z.infer<typeof simulatorSourceSchema>;
