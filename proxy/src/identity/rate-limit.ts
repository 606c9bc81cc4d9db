// Token buckets: one per source address and one for the whole service, so one
// noisy client cannot starve the others and all of them together cannot make
// the service hammer the API server with TokenReviews.

class Bucket {
  constructor(
    public tokens: number,
    public at: number,
  ) {}
}

export interface RateLimits {
  readonly perSourcePerSecond: number;
  readonly perSourceBurst: number;
  readonly globalPerSecond: number;
  readonly globalBurst: number;
}

/** Sources remembered at most; past it, buckets that have refilled are forgotten. */
const MAX_SOURCES = 10_000;

export class RateLimiter {
  private readonly sources = new Map<string, Bucket>();
  private readonly global: Bucket;

  constructor(
    private readonly limits: RateLimits,
    now = Date.now(),
  ) {
    this.global = new Bucket(limits.globalBurst, now);
  }

  /** Takes a token for `source`; undefined if allowed, else which limit was hit. */
  take(source: string, now = Date.now()): "source" | "global" | undefined {
    const { perSourcePerSecond, perSourceBurst, globalPerSecond, globalBurst } = this.limits;
    let bucket = this.sources.get(source);
    if (bucket === undefined) {
      if (this.sources.size >= MAX_SOURCES) this.forgetFull(now);
      bucket = new Bucket(perSourceBurst, now);
      this.sources.set(source, bucket);
    }
    refill(bucket, perSourcePerSecond, perSourceBurst, now);
    refill(this.global, globalPerSecond, globalBurst, now);
    if (bucket.tokens < 1) return "source";
    if (this.global.tokens < 1) return "global";
    bucket.tokens -= 1;
    this.global.tokens -= 1;
    return undefined;
  }

  private forgetFull(now: number): void {
    const { perSourcePerSecond, perSourceBurst } = this.limits;
    for (const [source, b] of this.sources) {
      refill(b, perSourcePerSecond, perSourceBurst, now);
      if (b.tokens >= perSourceBurst) this.sources.delete(source);
    }
    // Everyone is mid-burst: the oldest entry goes, which can only be generous.
    if (this.sources.size >= MAX_SOURCES) this.sources.delete(this.sources.keys().next().value!);
  }
}

function refill(b: Bucket, perSecond: number, burst: number, now: number): void {
  b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * perSecond);
  b.at = now;
}
