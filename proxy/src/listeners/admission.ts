// How many requests a listener has in flight, and the load shedding that keeps
// it at limits.maxPendingRequests (read per request, so a reload applies at once).
// A drain waits for this count to reach zero.
import type { LiveConfig } from "../config/live";
import { ProxyError } from "../http/errors";
import type { Direction, MeshMetrics } from "../telemetry/metrics";

export class Admission {
  private pending = 0;

  constructor(
    private readonly listener: Direction,
    private readonly live: LiveConfig,
    private readonly metrics: MeshMetrics,
  ) {}

  get inFlight(): number {
    return this.pending;
  }

  /** Takes a request in, or returns the 503 it gets when the listener is full; `release` when its exchange closes. */
  admit(): ProxyError | undefined {
    if (this.pending >= this.live.current.config.limits.maxPendingRequests) {
      this.metrics.shed.labels(this.listener).inc();
      return new ProxyError("shed", `shedding load: ${this.pending} requests in flight on the ${this.listener} listener`);
    }
    this.pending++;
    this.metrics.pending[this.listener].value++;
    return undefined;
  }

  readonly release = (): void => {
    this.pending--;
    this.metrics.pending[this.listener].value--;
  };
}
