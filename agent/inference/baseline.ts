/**
 * A baseline that follows slow normal drift (manifest `normalisation.follow`, README §1): after the
 * warm-up, each feature's mean moves towards every new row with a half-life in rows, so a pump
 * whose water warms over hours is judged against its recent level instead of its first 400 rows.
 * The update uses the normalised value clipped to ±`followClip` (default: the model's `clip`), so
 * the baseline moves by at most `a * followClip` standard deviations per row: with a small
 * followClip, a slow drift (a small z every row) is followed while an abrupt fault (a large z) is
 * absorbed only slowly, so it stays visible for many rows instead of one half-life. It depends on the raw rows only (not on verdicts),
 * which keeps consecutive rows of a key batchable into one `session.run`.
 */

/** Per-feature update rates a = 1 - 2^(-1/h); 0 where the half-life is 0 (frozen). */
export function followRates(halflife: readonly number[]): Float64Array {
  return Float64Array.from(halflife, (h) => (h > 0 ? 1 - 2 ** (-1 / h) : 0));
}

/** Moves `mean` towards the row whose normalised value is `z` (after that row was normalised). */
export function followBaseline(mean: Float64Array, std: Float64Array, z: Float32Array, rates: Float64Array, followClip: number): void {
  for (let f = 0; f < rates.length; f++) {
    const a = rates[f]!;
    if (a === 0) continue;
    const zf = z[f]!;
    mean[f]! += a * std[f]! * (zf > followClip ? followClip : zf < -followClip ? -followClip : zf);
  }
}

/** Default of `normalisation.follow_std_clip`: one wild row moves the variance by at most 9 variances x its rate. */
export const FOLLOW_STD_CLIP = 3;

/**
 * A standard deviation that follows the key's noise level (manifest `normalisation.follow_std`,
 * README §1): a pump's vibration gets noisier over hours of normal running, and against the
 * warm-up's spread that reads as a fault. Called only while the key is not in alert (a fault's
 * spread is not learnt as normal); `z` is the row's clipped normalised value, its square counts
 * for at most `clip`² variances, and the result never falls below `minStd`.
 */
export function followSpread(std: Float64Array, z: Float32Array, rate: number, clip: number, minStd: number): void {
  const cap = clip * clip;
  for (let f = 0; f < std.length; f++) {
    const sd = std[f]!;
    const z2 = Math.min(z[f]! * z[f]!, cap);
    std[f] = Math.max(Math.sqrt(sd * sd + rate * (z2 * sd * sd - sd * sd)), minStd);
  }
}
