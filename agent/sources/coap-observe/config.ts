import { z } from 'zod';
import { urlPortProblem } from '../../util/port-range.js';

export const coapObserveSourceSchema = z.strictObject({
  type: z.literal('coap-observe'),
  /** coap://HOST:PORT/path?query of an observable (or pollable) resource. */
  url: z
    .string()
    .regex(/^coap:\/\/(\[[0-9a-fA-F:.]+\]|[^/:\s]+)(:\d{1,5})?(\/\S*)?$/, 'must be coap://HOST[:PORT]/path')
    .refine((u) => urlPortProblem(u) === undefined, { error: (i) => urlPortProblem(String(i.input)) ?? 'bad port' }),
  /** Sensor id for payloads that name none; default: the last path segment. */
  sensor: z.string().min(1).max(256).optional(),
  /** No notification for this long: register the observation again (the server may have restarted). */
  silence_timeout_ms: z.number().int().min(500).default(60_000),
  /** Not observable: GET this often instead (RFC 7641 §3.6 fallback). */
  poll_interval_ms: z.number().int().min(100).default(10_000),
  /** A registration or poll with no answer within this is given up and retried with back-off. */
  request_timeout_ms: z.number().int().min(100).default(5000),
});

export type CoapObserveSourceConfig = z.infer<typeof coapObserveSourceSchema>;
