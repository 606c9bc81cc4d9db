// Load balancing by power of two choices over a latency-weighted load: pick two
// endpoints at random and send to the one with fewer requests in flight, scaled
// by its recent latency. This avoids both round-robin's blindness to slow
// endpoints and least-loaded's herding onto one just-recovered endpoint.
// Endpoints that fail repeatedly are ejected for a while; if every candidate is
// ejected the balancer ignores ejection rather than failing everything.

export interface EjectionPolicy {
  readonly consecutiveFailures: number;
  readonly ejectMs: number;
}

export class LoadStats {
  pending = 0;
  /** Exponentially weighted latency in ms; 0 until the first response. */
  ewmaMs = 0;
  consecutiveFailures = 0;
  ejectedUntil = 0;
  lastUsed = 0;

  cost(): number {
    return (this.pending + 1) * (this.ewmaMs > 0 ? this.ewmaMs : 1);
  }
}

const EWMA_WEIGHT = 0.3;
const IDLE_FORGET_MS = 5 * 60_000;

export class Balancer {
  private readonly stats = new Map<string, LoadStats>();
  private sweptAt = Date.now();

  constructor(
    /** Read at each failure, so a reloaded policy applies at once. */
    private readonly ejection: () => EjectionPolicy,
    private readonly onEject: (key: string) => void = () => undefined,
  ) {}

  /** Picks one candidate; `exclude` holds keys already tried for this request. */
  pick<T extends { readonly key: string }>(candidates: readonly T[], exclude?: ReadonlySet<string>): T | undefined {
    const now = Date.now();
    this.sweep(now);
    let pool: readonly T[] = candidates;
    // Filtering allocates; the common case (nothing excluded or ejected) skips it.
    if (this.anyOut(candidates, exclude, now)) {
      let available: readonly T[] = candidates;
      if (exclude !== undefined && exclude.size > 0) available = candidates.filter((c) => !exclude.has(c.key));
      const healthy = available.filter((c) => !(this.statsFor(c.key).ejectedUntil > now));
      pool = healthy.length > 0 ? healthy : available;
    }
    if (pool.length <= 1) return pool[0];
    const i = Math.floor(Math.random() * pool.length);
    let j = Math.floor(Math.random() * (pool.length - 1));
    if (j >= i) j++;
    const a = pool[i]!;
    const b = pool[j]!;
    return this.statsFor(a.key).cost() <= this.statsFor(b.key).cost() ? a : b;
  }

  private anyOut(candidates: readonly { readonly key: string }[], exclude: ReadonlySet<string> | undefined, now: number): boolean {
    for (const c of candidates) {
      if (exclude?.has(c.key) === true) return true;
      const s = this.stats.get(c.key);
      if (s !== undefined && s.ejectedUntil > now) return true;
    }
    return false;
  }

  /** Marks a request started on `key`; pass the result to finish(). */
  start(key: string): LoadStats {
    const s = this.statsFor(key);
    s.pending++;
    s.lastUsed = Date.now();
    return s;
  }

  finish(key: string, s: LoadStats, ok: boolean, latencyMs: number): void {
    s.pending--;
    if (ok) {
      s.consecutiveFailures = 0;
      s.ewmaMs = s.ewmaMs === 0 ? latencyMs : s.ewmaMs + EWMA_WEIGHT * (latencyMs - s.ewmaMs);
      return;
    }
    const policy = this.ejection();
    if (++s.consecutiveFailures >= policy.consecutiveFailures) {
      s.consecutiveFailures = 0;
      s.ejectedUntil = Date.now() + policy.ejectMs;
      this.onEject(key);
    }
  }

  isEjected(key: string): boolean {
    return (this.stats.get(key)?.ejectedUntil ?? 0) > Date.now();
  }

  private statsFor(key: string): LoadStats {
    let s = this.stats.get(key);
    if (s === undefined) {
      s = new LoadStats();
      this.stats.set(key, s);
    }
    return s;
  }

  /** Forgets endpoints unused for a while, so pod churn does not grow the map forever. */
  private sweep(now: number): void {
    if (now - this.sweptAt < IDLE_FORGET_MS) return;
    this.sweptAt = now;
    for (const [key, s] of this.stats) {
      if (s.pending === 0 && now - s.lastUsed > IDLE_FORGET_MS && s.ejectedUntil < now) this.stats.delete(key);
    }
  }
}
