/**
 * A baseline that follows slow normal drift (manifest `normalisation.follow`, README §1): after the
 * warm-up, each feature's mean moves towards every new row with a half-life in rows, so a pump
 * whose water warms over hours is judged against its recent level instead of its first 400 rows.
 * The update uses the clipped normalised value, so one wild reading moves the baseline by at most
 * `clip` standard deviations times the rate. It depends on the raw rows only (not on verdicts),
 * which keeps consecutive rows of a key batchable into one `session.run`.
 */

/** Per-feature update rates a = 1 - 2^(-1/h); 0 where the half-life is 0 (frozen). */
export function followRates(halflife: readonly number[]): Float64Array {
  return Float64Array.from(halflife, (h) => (h > 0 ? 1 - 2 ** (-1 / h) : 0));
}

/** Moves `mean` towards the row whose clipped normalised value is `z` (after that row was normalised). */
export function followBaseline(mean: Float64Array, std: Float64Array, z: Float32Array, rates: Float64Array): void {
  for (let f = 0; f < rates.length; f++) {
    const a = rates[f]!;
    if (a > 0) mean[f]! += a * std[f]! * z[f]!;
  }
}
