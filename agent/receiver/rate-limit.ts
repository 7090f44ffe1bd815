/**
 * Token buckets keyed by client (the source address): `ratePerS` requests per second with
 * bursts up to `burst`. Memory stays bounded: past `maxKeys`, buckets that have refilled
 * (clients that went quiet) are forgotten, since a full bucket is the same as a new one.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  /** Clients currently tracked (bounded by maxKeys): what the receiver holds in memory for rate limiting. */
  get trackedClients(): number {
    return this.buckets.size;
  }

  constructor(
    private readonly ratePerS: number,
    private readonly burst: number,
    private readonly maxKeys = 10_000,
  ) {}

  /** Takes one token; when none is left, says how many seconds until one is (for Retry-After). */
  take(key: string, nowMs: number): { ok: true } | { ok: false; retryAfterS: number } {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.forgetFull(nowMs);
      b = { tokens: this.burst, at: nowMs };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((nowMs - b.at) / 1000) * this.ratePerS);
    b.at = nowMs;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterS: Math.max(1, Math.ceil((1 - b.tokens) / this.ratePerS)) };
  }

  private forgetFull(nowMs: number): void {
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((nowMs - b.at) / 1000) * this.ratePerS >= this.burst) this.buckets.delete(key);
    }
    // Everyone is busy: drop the oldest entries rather than grow without bound.
    for (const key of this.buckets.keys()) {
      if (this.buckets.size < this.maxKeys) break;
      this.buckets.delete(key);
    }
  }
}
