// A retry budget, as in Finagle: retries may add at most `percent` of recent
// traffic, plus a small floor per second so a quiet proxy can still retry. A
// budget rather than a per-request count keeps retries from multiplying load
// exactly when a peer is failing.

export interface RetryBudgetPolicy {
  readonly budgetPercent: number;
  readonly minRetriesPerSecond: number;
  readonly ttlMs: number;
}

const BUCKETS = 10;

export class RetryBudget {
  private readonly deposits = new Float64Array(BUCKETS);
  private readonly withdrawals = new Float64Array(BUCKETS);
  private ttlMs = 0;
  private bucketMs = 1;
  private current = 0;
  private currentStart = 0;

  constructor(
    /** Read at each use, so a reloaded policy applies at once. */
    private readonly policy: () => RetryBudgetPolicy,
    private readonly now: () => number = Date.now,
  ) {
    this.window(policy().ttlMs);
  }

  /** Every original request earns a fraction of a retry. */
  deposit(): void {
    const policy = this.policy();
    this.advance(policy.ttlMs);
    this.deposits[this.current]! += policy.budgetPercent;
  }

  /** Takes one retry from the budget if there is one. */
  tryWithdraw(): boolean {
    const policy = this.policy();
    this.advance(policy.ttlMs);
    let deposited = (policy.minRetriesPerSecond * policy.ttlMs) / 1000;
    let withdrawn = 0;
    for (let i = 0; i < BUCKETS; i++) {
      deposited += this.deposits[i]!;
      withdrawn += this.withdrawals[i]!;
    }
    // Fractions of a retry add up in floating point; 100 x 0.2 must make 20.
    if (deposited - withdrawn < 1 - 1e-9) return false;
    this.withdrawals[this.current]! += 1;
    return true;
  }

  /** A new window length starts the count afresh: old buckets measured another span. */
  private window(ttlMs: number): void {
    this.ttlMs = ttlMs;
    this.bucketMs = Math.max(1, Math.floor(ttlMs / BUCKETS));
    this.deposits.fill(0);
    this.withdrawals.fill(0);
    this.current = 0;
    this.currentStart = this.now();
  }

  private advance(ttlMs: number): void {
    if (ttlMs !== this.ttlMs) this.window(ttlMs);
    const now = this.now();
    let steps = Math.floor((now - this.currentStart) / this.bucketMs);
    if (steps <= 0) return;
    this.currentStart += steps * this.bucketMs;
    if (steps > BUCKETS) steps = BUCKETS;
    for (let s = 0; s < steps; s++) {
      this.current = (this.current + 1) % BUCKETS;
      this.deposits[this.current] = 0;
      this.withdrawals[this.current] = 0;
    }
  }
}
