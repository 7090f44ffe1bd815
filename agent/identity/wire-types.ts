import { z } from 'zod';

/** zod primitives shared by the batch, verdict and receipt schemas (docs/wire-format.md §1, §3). */
export const byteString = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be a byte string');
export const bytesOf = (n: number) => byteString.refine((b) => b.length === n, `must be ${n} bytes`);
export const bytes32 = bytesOf(32);
export const int = z.number().int().refine(Number.isSafeInteger, 'must be a safe integer');
export const uint = int.refine((n) => n >= 0, 'must not be negative');
export const finite = z.number().refine(Number.isFinite, 'must be finite');

/**
 * A text of `min`..`max` UTF-16 code units (§3 footnote). Not zod's `.max()`: zod 4 counts code
 * points, so 129 emoji (258 units) would pass a limit of 256.
 */
export const text = (min: number, max: number) =>
  z.string().refine((s) => s.length >= min && s.length <= max, `must be ${min}-${max} UTF-16 code units long`);
