// The outermost layer of both directions: whatever happened inside (a request
// that could not be bound, a forward that failed), this is the one place the
// client is answered with an error, and where every request is counted under
// the service it was bound to.
import type { Agent } from "node:http";
import type { LiveConfig, LiveSettings } from "../config/live";
import { ProxyError } from "../http/errors";
import { type ReceivedRequest, type ResponseSink, elapsed } from "../http/exchange";
import { type Logger, errorMessage } from "../telemetry/log";
import { type Direction, type MeshMetrics, UNBOUND } from "../telemetry/metrics";
import type { Balancer } from "./balancer";
import type { LogicalStep } from "./logical-step";

/** What both directions route with. */
export interface RouterDeps {
  readonly live: LiveConfig;
  /** Names, loop check, override policy and binding, with the direction's namers and policy. */
  readonly step: LogicalStep;
  readonly balancer: Balancer;
  /** Plain HTTP/1.1 connections: to local pods, and to /$/inet addresses. */
  readonly agent: Agent;
  readonly metrics: MeshMetrics;
  readonly log: Logger;
}

/** What a request's metrics are labelled with, learnt as it is routed. */
export interface RouteLabels {
  service: string;
}

export abstract class Router<D extends RouterDeps> {
  protected abstract readonly direction: Direction;

  constructor(protected readonly d: D) {}

  async route(received: ReceivedRequest, sink: ResponseSink): Promise<void> {
    const started = performance.now();
    const labels: RouteLabels = { service: UNBOUND };
    let status: number;
    try {
      status = await this.dispatch(received, sink, this.d.live.current, labels);
    } catch (err) {
      const e = err instanceof ProxyError ? err : new ProxyError("unavailable", errorMessage(err));
      sink.fail(e);
      status = e.status;
      if (this.d.log.enabled("debug")) this.d.log.debug("request_failed", { direction: this.direction, error: e.message });
    }
    // 0: the client went away before an answer, and there is nothing to count.
    if (status !== 0) this.d.metrics.forService(this.direction, labels.service).observe(status, elapsed(started));
  }

  /**
   * Routes and forwards `received` with the settings current when it arrived,
   * returning the status the client got (0 if none). Throws a ProxyError for
   * the client when nothing was forwarded.
   */
  protected abstract dispatch(received: ReceivedRequest, sink: ResponseSink, settings: LiveSettings, labels: RouteLabels): Promise<number>;
}
