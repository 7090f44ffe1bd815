import { z } from 'zod';
import { didKeySchema } from '../../identity/did-key-schema.js';
import { urlPortProblem } from '../../util/port-range.js';
import { tlsSchema } from '../../util/tls.js';

export const httpUplinkSchema = z.strictObject({
  type: z.literal('http'),
  url: z
    .string()
    .regex(/^https?:\/\/\S+$/, 'must be an http:// or https:// URL')
    .refine((u) => urlPortProblem(u) === undefined, { error: (i) => urlPortProblem(String(i.input)) ?? 'bad port' }),
  /** did:key of the receiver; when set, every delivery must come with a receipt it signed. */
  receiver_key: didKeySchema.optional(),
  /** did:key of the network key to seal every batch to (docs/wire-format.md §12.6): relays see headers, not data. */
  encrypt_to: z.string().regex(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$/, 'must be an Ed25519 did:key (did:key:z6Mk...)').pipe(didKeySchema).optional(),
  timeout_ms: z.number().int().min(100).default(10_000),
  retry_initial_ms: z.number().int().min(10).default(500),
  retry_max_ms: z.number().int().min(10).default(60_000),
  /** Upper bound on deliveries per second, so a backlog drains without saturating a thin uplink; 0 = no limit. */
  max_batches_per_s: z.number().min(0).default(0),
  /** For https:// URLs: custom CA, client certificate (mutual TLS), servername. */
  tls: tlsSchema.optional(),
}).refine((c) => c.tls === undefined || c.url.startsWith('https://'), { message: 'is set but url is http://: use https:// for TLS', path: ['tls'] });

export type HttpUplinkConfig = z.infer<typeof httpUplinkSchema>;
