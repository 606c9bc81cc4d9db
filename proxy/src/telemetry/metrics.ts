// Prometheus metrics for the admin /metrics endpoint. Each proxy owns a registry
// (several proxies may share a process in tests). Per-request updates go through
// cached label children: prom-client's labels() hashes its arguments every call.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export type Direction = "outgoing" | "incoming";
export type Listener = Direction | "admin";

/** Bound service names only, never raw Host values: clients must not be able to mint series. */
export const UNBOUND = "unbound";

export interface RequestMetrics {
  observe(statusCode: number, seconds: number): void;
}

export class MeshMetrics {
  readonly registry = new Registry();

  private readonly requests = new Counter({
    name: "mesh_requests_total",
    help: "Requests handled, by direction, bound service and status class (2xx..5xx).",
    labelNames: ["direction", "service", "status_class"] as const,
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: "mesh_request_duration_seconds",
    help: "Time from request received to response headers sent, by direction and service.",
    labelNames: ["direction", "service"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly tlsHandshakes = new Counter({
    name: "mesh_tls_handshakes_total",
    help: "Completed TLS handshakes with mesh peers; side=server for 4141, client for connections this proxy opens.",
    labelNames: ["side"] as const,
    registers: [this.registry],
  });
  readonly tlsHandshakeFailures = new Counter({
    name: "mesh_tls_handshake_failures_total",
    help: "Refused or failed TLS handshakes, by side and reason.",
    labelNames: ["side", "reason"] as const,
    registers: [this.registry],
  });
  readonly certificateExpiry = new Gauge({
    name: "mesh_certificate_expiry_timestamp_seconds",
    help: "notAfter of the loaded mesh certificate and of each trusted CA, as a Unix timestamp.",
    labelNames: ["certificate"] as const,
    registers: [this.registry],
  });
  readonly openConnections = new Gauge({
    name: "mesh_open_connections",
    help: "Open client connections per listener, and open peer connections (listener=peers).",
    labelNames: ["listener"] as const,
    registers: [this.registry],
  });
  readonly pendingRequests = new Gauge({
    name: "mesh_pending_requests",
    help: "Requests in flight per listener.",
    labelNames: ["listener"] as const,
    registers: [this.registry],
  });
  readonly shed = new Counter({
    name: "mesh_requests_shed_total",
    help: "Requests answered 503 because the listener had maxPendingRequests in flight.",
    labelNames: ["listener"] as const,
    registers: [this.registry],
  });
  readonly retries = new Counter({
    name: "mesh_retries_total",
    help: "Requests retried on another endpoint after a connection failure.",
    registers: [this.registry],
  });
  readonly retriesBudgetExhausted = new Counter({
    name: "mesh_retry_budget_exhausted_total",
    help: "Retryable failures not retried because the retry budget was spent.",
    registers: [this.registry],
  });
  readonly ejections = new Counter({
    name: "mesh_ejections_total",
    help: "Endpoints or peers taken out of load balancing after consecutive failures.",
    registers: [this.registry],
  });
  readonly dtabOverridesIgnored = new Counter({
    name: "mesh_dtab_overrides_ignored_total",
    help: "l5d-dtab headers dropped because the sender is not allowed to re-route.",
    registers: [this.registry],
  });
  readonly discoverySynced = new Gauge({
    name: "mesh_discovery_synced",
    help: "1 once the Kubernetes watch for this resource has completed its first list.",
    labelNames: ["resource"] as const,
    registers: [this.registry],
  });
  readonly discoveryErrors = new Counter({
    name: "mesh_discovery_watch_errors_total",
    help: "Kubernetes watch failures (the last known endpoints keep serving meanwhile).",
    labelNames: ["resource"] as const,
    registers: [this.registry],
  });
  readonly reloads = new Counter({
    name: "mesh_reloads_total",
    help: "Live reloads of files, by what was reloaded and whether it was accepted.",
    labelNames: ["what", "result"] as const,
    registers: [this.registry],
  });

  private readonly children = new Map<string, RequestMetrics>();

  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** The request metrics for one (direction, service) pair, created once and reused. */
  forService(direction: Direction, service: string): RequestMetrics {
    const key = `${direction}\u0000${service}`;
    let child = this.children.get(key);
    if (child === undefined) {
      const byClass = new Map<number, Counter.Internal>();
      const hist = this.latency.labels(direction, service);
      const requests = this.requests;
      child = {
        observe(statusCode: number, seconds: number): void {
          const cls = Math.floor(statusCode / 100);
          let counter = byClass.get(cls);
          if (counter === undefined) {
            counter = requests.labels(direction, service, `${cls}xx`);
            byClass.set(cls, counter);
          }
          counter.inc();
          hist.observe(seconds);
        },
      };
      this.children.set(key, child);
    }
    return child;
  }

  async render(): Promise<string> {
    return this.registry.metrics();
  }
}
