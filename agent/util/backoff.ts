/** Exponential back-off with "equal jitter": half fixed, half random, so gateways that lost the uplink together do not return together. */
export function backoffDelay(failures: number, initialMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(failures - 1, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
