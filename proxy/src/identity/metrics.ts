// The identity service's Prometheus metrics: what it signed, what it refused
// and why, and when its issuer expires.
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type { RefusalReason } from "./refusal";

export class IdentityMetrics {
  readonly registry = new Registry();
  readonly issued = new Counter({
    name: "identity_certificates_issued_total",
    help: "Leaf certificates signed for mesh proxies.",
    registers: [this.registry],
  });
  readonly refused = new Counter<"reason">({
    name: "identity_requests_refused_total",
    help: "Requests refused, by reason.",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly issuerExpiry = new Gauge({
    name: "identity_issuer_expiry_timestamp_seconds",
    help: "When the issuer certificate in use expires (Unix seconds).",
    registers: [this.registry],
  });
  readonly issuerReloads = new Counter<"result">({
    name: "identity_issuer_reloads_total",
    help: "Issuer file reloads, by result (applied, rejected).",
    labelNames: ["result"],
    registers: [this.registry],
  });

  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  refusal(reason: RefusalReason): void {
    this.refused.labels(reason).inc();
  }
}
