import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Balancer } from "../../proxy/src/routing/balancer";
import { RetryBudget } from "../../proxy/src/routing/retry-budget";

const eps = ["a", "b", "c", "d"].map((key) => ({ key }));

describe("load balancer", () => {
  it("sends new requests away from an endpoint with many in flight", () => {
    const b = new Balancer(() => ({ consecutiveFailures: 5, ejectMs: 1000 }));
    for (let i = 0; i < 50; i++) b.start("a");
    const picks = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const e = b.pick(eps)!;
      picks.set(e.key, (picks.get(e.key) ?? 0) + 1);
    }
    // Power of two choices never picks the worst of two, so "a" is chosen only
    // when both draws are "a", which the sampler rules out.
    assert.equal(picks.get("a") ?? 0, 0);
  });

  it("prefers endpoints that answer faster", () => {
    const b = new Balancer(() => ({ consecutiveFailures: 5, ejectMs: 1000 }));
    for (const [key, ms] of [["a", 50], ["b", 1], ["c", 1], ["d", 1]] as const) {
      const s = b.start(key);
      b.finish(key, s, true, ms);
    }
    let slow = 0;
    for (let i = 0; i < 3000; i++) if (b.pick(eps)!.key === "a") slow++;
    assert.equal(slow, 0);
  });

  it("ejects an endpoint after consecutive failures, and uses it again if nothing else is left", () => {
    const ejected: string[] = [];
    const b = new Balancer(() => ({ consecutiveFailures: 3, ejectMs: 60_000 }), (k) => ejected.push(k));
    for (let i = 0; i < 3; i++) b.finish("a", b.start("a"), false, 1);
    assert.deepEqual(ejected, ["a"]);
    for (let i = 0; i < 500; i++) assert.notEqual(b.pick(eps)!.key, "a");
    assert.equal(b.pick([{ key: "a" }])!.key, "a", "an ejected endpoint beats no endpoint");
  });

  it("excludes endpoints already tried for this request", () => {
    const b = new Balancer(() => ({ consecutiveFailures: 3, ejectMs: 1000 }));
    assert.equal(b.pick(eps, new Set(["a", "b", "c"]))!.key, "d");
    assert.equal(b.pick(eps, new Set(["a", "b", "c", "d"])), undefined);
  });
});

describe("retry budget", () => {
  it("allows the floor of retries per second with no traffic", () => {
    let now = 0;
    const budget = new RetryBudget(() => ({ budgetPercent: 0.2, minRetriesPerSecond: 2, ttlMs: 1000 }), () => now);
    assert.ok(budget.tryWithdraw());
    assert.ok(budget.tryWithdraw());
    assert.equal(budget.tryWithdraw(), false);
    now += 1100;
    assert.ok(budget.tryWithdraw(), "the window moved on");
  });

  it("grows with traffic by budgetPercent of requests", () => {
    const budget = new RetryBudget(() => ({ budgetPercent: 0.2, minRetriesPerSecond: 0, ttlMs: 10_000 }), () => 0);
    for (let i = 0; i < 100; i++) budget.deposit();
    let allowed = 0;
    while (budget.tryWithdraw()) allowed++;
    assert.equal(allowed, 20);
  });
});
