import { z } from 'zod';

export const serialSourceSchema = z.strictObject({
  type: z.literal('serial'),
  /** Device path. Prefer /dev/serial/by-id/...: it names the same adapter after a replug, whatever ttyUSBn it gets. */
  path: z.string().min(1),
  baud: z.number().int().min(300).max(4_000_000).default(115_200),
  /** frames: the binary protocol of firmware-bridge/PROTOCOL.md; text: name=value lines (§5). */
  mode: z.enum(['frames', 'text']).default('frames'),
  /** Back-off when the port is missing or fails: from this... */
  reopen_initial_ms: z.number().int().min(10).default(500),
  /** ...up to this. */
  reopen_max_ms: z.number().int().min(10).default(10_000),
  /** No byte for this long (the device heartbeats every 2 s) means the line is dead: reopen it. */
  silence_timeout_ms: z.number().int().min(500).default(6000),
});

export type SerialSourceConfig = z.infer<typeof serialSourceSchema>;
