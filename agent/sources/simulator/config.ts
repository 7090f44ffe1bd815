import { z } from 'zod';

export const simulatorSourceSchema = z.strictObject({
  type: z.literal('simulator'),
  /** Number of simulated sensors: sim-01 ... sim-NN. */
  sensors: z.number().int().min(1).max(10_000).default(4),
  interval_ms: z.number().int().min(1).default(1000),
  /** Seed of the pseudo-random noise, so a demo run is reproducible. */
  seed: z.number().int().default(1),
  /** A failing sensor, for demos of anomaly detection: sensor number `sensor` jumps by `offset` after `after` readings. */
  fault: z
    .strictObject({
      sensor: z.number().int().min(1).default(1),
      after: z.number().int().min(0),
      offset: z.number().refine(Number.isFinite, 'must be finite').default(8),
    })
    .optional(),
});

export type SimulatorSourceConfig = z.infer<typeof simulatorSourceSchema>;
