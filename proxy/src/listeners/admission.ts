// How many requests a listener has in flight, and the load shedding that keeps
// it at limits.maxPendingRequests (read per request, so a reload applies at once).
// A drain waits for this count to reach zero.
import type { LiveConfig } from "../config/live";
import { ProxyError } from "../http/errors";
import type { ResponseSink } from "../http/exchange";
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

  /**
   * Takes a request in, counted until `exchange` (its stream or response)
   * closes; or, when the listener is full, answers it 503 and returns false.
   */
  admit(sink: ResponseSink, exchange: { once(event: "close", listener: () => void): unknown }): boolean {
    if (this.pending >= this.live.current.config.limits.maxPendingRequests) {
      this.metrics.shed.labels(this.listener).inc();
      sink.fail(new ProxyError("shed", `shedding load: ${this.pending} requests in flight on the ${this.listener} listener`));
      return false;
    }
    this.pending++;
    this.metrics.pending[this.listener].value++;
    exchange.once("close", this.release);
    return true;
  }

  private readonly release = (): void => {
    this.pending--;
    this.metrics.pending[this.listener].value--;
  };
}
