// Prometheus metrics for the admin /metrics endpoint. Each proxy owns a registry
// (several proxies may share a process in tests). The per-request series
// (requests, latency, pending) are plain numbers updated in place and turned
// into samples only when /metrics is scraped: prom-client hashes the label
// values on every inc()/observe(), even through a labels() child, which cost
// about 5 us per request per proxy.
import { Counter, Gauge, Histogram, type Metric, Registry, collectDefaultMetrics } from "prom-client";

export type Direction = "outgoing" | "incoming";
export type Listener = Direction | "admin";

/** Bound service names only, never raw Host values: clients must not be able to mint series. */
export const UNBOUND = "unbound";

export interface RequestMetrics {
  observe(statusCode: number, seconds: number): void;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

/** Counts and latency histogram of one (direction, service) pair. */
class RequestSeries implements RequestMetrics {
  /** By status class: index 1 for 1xx .. 5xx; others land in 0 ("0xx"). */
  readonly byClass = [0, 0, 0, 0, 0, 0];
  /** Non-cumulative counts per bucket; the last slot is above the largest bound. */
  readonly buckets = new Float64Array(LATENCY_BUCKETS.length + 1);
  sum = 0;
  count = 0;

  constructor(
    readonly direction: Direction,
    readonly service: string,
  ) {}

  observe(statusCode: number, seconds: number): void {
    const cls = (statusCode / 100) | 0;
    this.byClass[cls >= 1 && cls <= 5 ? cls : 0]!++;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]!) i++;
    this.buckets[i]!++;
    this.sum += seconds;
    this.count++;
  }
}

/** One (direction, service) pair's counters as /metrics reports them, for the admin summary. */
export interface RequestSeriesSnapshot {
  readonly direction: Direction;
  readonly service: string;
  /** By status class, as mesh_requests_total's status_class label: "0xx" .. "5xx". */
  readonly byClass: Readonly<Record<string, number>>;
  /** Cumulative, as the le buckets of mesh_request_duration_seconds; the last has le Infinity. */
  readonly buckets: readonly { readonly le: number; readonly count: number }[];
  readonly count: number;
  readonly sum: number;
}

interface Sample {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  readonly metricName?: string;
}

/**
 * A metric prom-client's Registry can render, whose samples are computed at
 * scrape time from the proxy's own counters.
 */
class ScrapedMetric {
  readonly aggregator = "sum";
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge" | "histogram",
    private readonly samples: () => Sample[],
  ) {}

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.samples() };
  }

  reset(): void {}
}

/** A gauge per listener for requests in flight, read at scrape time. */
export class PendingGauge {
  value = 0;
}

export class MeshMetrics {
  readonly registry = new Registry();

  readonly tlsHandshakes = this.counter(
    "mesh_tls_handshakes_total",
    "Completed TLS handshakes with mesh peers; side=server for 4141, client for connections this proxy opens.",
    ["side"],
  );
  readonly tlsHandshakeFailures = this.counter(
    "mesh_tls_handshake_failures_total",
    "Refused or failed TLS handshakes, by side and reason.",
    ["side", "reason"],
  );
  readonly certificateExpiry = this.gauge(
    "mesh_certificate_expiry_timestamp_seconds",
    "notAfter of the loaded mesh certificate and of each trusted CA, as a Unix timestamp.",
    ["certificate"],
  );
  readonly certificateRenewalFailures = this.counter(
    "mesh_certificate_renewal_failures_total",
    "Failed requests for this proxy's certificate to the identity service, by reason (token_unreadable, unreachable, refused, service_error, bad_response).",
    ["reason"],
  );
  readonly openConnections = this.gauge(
    "mesh_open_connections",
    "Open client connections per listener, and open peer connections (listener=peers).",
    ["listener"],
  );
  /** Requests in flight per listener (mesh_pending_requests), updated in place. */
  readonly pending: Readonly<Record<Direction, PendingGauge>> = { outgoing: new PendingGauge(), incoming: new PendingGauge() };
  readonly shed = this.counter(
    "mesh_requests_shed_total",
    "Requests answered 503 because the listener had maxPendingRequests in flight.",
    ["listener"],
  );
  readonly retries = this.counter("mesh_retries_total", "Requests retried on another endpoint after a connection failure.");
  readonly retriesBudgetExhausted = this.counter(
    "mesh_retry_budget_exhausted_total",
    "Retryable failures not retried because the retry budget was spent.",
  );
  readonly ejections = this.counter(
    "mesh_ejections_total",
    "Endpoints or peers taken out of load balancing after consecutive failures.",
  );
  readonly dtabOverridesIgnored = this.counter(
    "mesh_dtab_overrides_ignored_total",
    "l5d-dtab headers dropped because the sender is not allowed to re-route.",
  );
  readonly incomingAddressRefused = this.counter(
    "mesh_incoming_address_refused_total",
    "Requests on 4141 refused (403) because their name was bound to an address (/$/inet) rather than a Service on this node.",
  );
  readonly peerSessionsClosed = this.counter(
    "mesh_peer_sessions_closed_total",
    "Connections on 4141 this proxy closed gracefully: idle (no stream for limits.peerSessionIdleTimeoutMs), or the peer's certificate no longer admitted (expired, CA left the bundle).",
    ["reason"],
  );
  readonly discoverySynced = this.gauge(
    "mesh_discovery_synced",
    "1 once the Kubernetes watch for this resource has completed its first list.",
    ["resource"],
  );
  readonly discoveryErrors = this.counter(
    "mesh_discovery_watch_errors_total",
    "Kubernetes watch failures (the last known endpoints keep serving meanwhile).",
    ["resource"],
  );
  readonly restartPending = this.gauge(
    "mesh_config_restart_pending",
    "1 for each restart-required config key whose value in the file differs from the running one; the proxy runs on the old value until it restarts.",
    ["key"],
  );
  readonly reloads = this.counter(
    "mesh_reloads_total",
    "Live reloads of files, by what was reloaded and whether it was accepted.",
    ["what", "result"],
  );

  readonly tunnelsOpen = this.gauge("mesh_tunnels_open", "Established CONNECT tunnels, by direction and bound service.", ["direction", "service"]);
  readonly tunnelBytes = this.counter(
    "mesh_tunnel_bytes_total",
    "Bytes relayed through tunnels, by direction, bound service and flow (from_client, to_client).",
    ["direction", "service", "flow"],
  );
  readonly tunnelDuration = new Histogram({
    name: "mesh_tunnel_duration_seconds",
    help: "How long tunnels lasted, by direction, bound service and ending (closed cleanly, broken, idle).",
    labelNames: ["direction", "service", "ending"] as const,
    buckets: [0.01, 0.1, 1, 10, 60, 600, 3600],
    registers: [this.registry],
  });

  private readonly series = new Map<string, RequestSeries>();

  private counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  private gauge<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  constructor(opts: { processMetrics?: boolean } = {}) {
    this.registry.registerMetric(
      new ScrapedMetric(
        "mesh_requests_total",
        "Requests handled, by direction, bound service and status class (2xx..5xx).",
        "counter",
        () => this.requestSamples(),
      ) as unknown as Metric,
    );
    this.registry.registerMetric(
      new ScrapedMetric(
        "mesh_request_duration_seconds",
        "Time from request received to response headers sent, by direction and service.",
        "histogram",
        () => this.latencySamples(),
      ) as unknown as Metric,
    );
    this.registry.registerMetric(
      new ScrapedMetric("mesh_pending_requests", "Requests in flight per listener.", "gauge", () =>
        (["outgoing", "incoming"] as const).map((listener) => ({ labels: { listener }, value: this.pending[listener].value })),
      ) as unknown as Metric,
    );
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** The request metrics for one (direction, service) pair, created once and reused. */
  forService(direction: Direction, service: string): RequestMetrics {
    const key = `${direction}\u0000${service}`;
    let s = this.series.get(key);
    if (s === undefined) {
      s = new RequestSeries(direction, service);
      this.series.set(key, s);
    }
    return s;
  }

  /** Every request series, read when asked: nothing is kept for it between reads. */
  requestSeries(): RequestSeriesSnapshot[] {
    const out: RequestSeriesSnapshot[] = [];
    for (const s of this.series.values()) {
      const byClass: Record<string, number> = {};
      s.byClass.forEach((n, cls) => (byClass[`${cls}xx`] = n));
      let acc = 0;
      const buckets: { le: number; count: number }[] = LATENCY_BUCKETS.map((le, i) => ({ le, count: (acc += s.buckets[i]!) }));
      buckets.push({ le: Infinity, count: s.count });
      out.push({ direction: s.direction, service: s.service, byClass, buckets, count: s.count, sum: s.sum });
    }
    return out;
  }

  private requestSamples(): Sample[] {
    const out: Sample[] = [];
    for (const s of this.series.values()) {
      s.byClass.forEach((n, cls) => {
        if (n > 0) out.push({ labels: { direction: s.direction, service: s.service, status_class: `${cls}xx` }, value: n });
      });
    }
    return out;
  }

  private latencySamples(): Sample[] {
    const out: Sample[] = [];
    const bucket = "mesh_request_duration_seconds_bucket";
    for (const s of this.series.values()) {
      const { direction, service } = s;
      let acc = 0;
      LATENCY_BUCKETS.forEach((le, i) => {
        acc += s.buckets[i]!;
        out.push({ labels: { direction, service, le }, value: acc, metricName: bucket });
      });
      out.push({ labels: { direction, service, le: "+Inf" }, value: s.count, metricName: bucket });
      out.push({ labels: { direction, service }, value: s.sum, metricName: "mesh_request_duration_seconds_sum" });
      out.push({ labels: { direction, service }, value: s.count, metricName: "mesh_request_duration_seconds_count" });
    }
    return out;
  }

  async render(): Promise<string> {
    return this.registry.metrics();
  }
}
