import { z } from 'zod';
import { didKeySchema } from '../identity/did-key-schema.js';

/**
 * Signed remote updates (docs/updates.md): absent = the agent takes none. The publisher key is the
 * only key whose bundles are applied; keep its private half off the gateways.
 */
export const updateSchema = z.strictObject({
  /** did:key of the update publisher (`edge-agent keys generate --publisher`). */
  publisher_key: z.string().regex(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$/, 'must be an ed25519 did:key (did:key:z6Mk...)').pipe(didKeySchema),
  /** After an update is applied, health must return within this time, or the previous version is put back. */
  health_timeout_s: z.number().int().min(5).max(3600).default(60),
  /** A file named by URL is fetched within this time (per file). */
  fetch_timeout_s: z.number().int().min(1).max(3600).default(60),
  /** The shadow run of a new model set over recent readings, against the running set (docs/updates.md §5). */
  shadow: z
    .strictObject({
      /** At most this share of the compared verdicts may differ (alert state, or score by more than score_tolerance). */
      max_disagreement: z.number().min(0).max(1).default(0.05),
      score_tolerance: z.number().min(0).default(0.05),
      /** Recent readings replayed through both sets (the newest in the store). */
      readings: z.number().int().min(100).max(200_000).default(5000),
      /** With fewer compared verdicts than this, the shadow run cannot vouch for the set: refused. */
      min_verdicts: z.number().int().min(0).default(20),
    })
    .prefault({}),
});

export type UpdateConfig = z.infer<typeof updateSchema>;
