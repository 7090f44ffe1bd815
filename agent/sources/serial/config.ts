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
  /**
   * Sensor keys (PROTOCOL.md §3.9): device uid (16 hex digits, as the HELLO gives it) to the
   * board's Ed25519 public key (64 hex digits), as `edge-agent sensor-key generate` registers it.
   * ATTEST frames of a device listed here are checked under its key and carried into batches; a
   * device not listed is flagged (counted, logged, an event), and its readings go unattested.
   */
  attest_keys: z
    .record(z.string().regex(/^[0-9a-f]{16}$/, 'a device uid is 16 lowercase hex digits'), z.string().regex(/^[0-9a-f]{64}$/, 'a sensor key is 64 lowercase hex digits (32 bytes)'))
    .refine((m) => Object.keys(m).length <= 256, 'at most 256 sensor keys per serial source')
    .default({}),
  /** How long the batcher holds a signing device's readings back for the ATTEST of their run (then they go unattested, counted). */
  attest_wait_ms: z.number().int().min(0).max(600_000).default(60_000),
});

export type SerialSourceConfig = z.infer<typeof serialSourceSchema>;
