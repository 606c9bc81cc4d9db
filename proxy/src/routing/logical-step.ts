// The step both directions take before anything is forwarded: name the
// request (/svc/<host>), refuse a loop, apply the override policy, and bind the
// name through the dtab. What follows (which endpoint, which forwarder) is the
// direction's own.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { LiveSettings } from "../config/live";
import { ProxyError } from "../http/errors";
import type { ReceivedRequest } from "../http/exchange";
import { DST_ENDPOINT_HEADER, endToEndHeaders } from "../http/headers";
import type { Logger } from "../telemetry/log";
import type { MeshMetrics } from "../telemetry/metrics";
import { DTAB_HEADER, type DtabHeaderCache } from "./dtab-header";
import type { Dtab } from "@zt-mesh/proxy-config";
import { refuseLoop, viaForNextHop } from "./loop-prevention";
import type { OverridePolicy } from "./override-policy";
import type { Destination, Resolver } from "./resolve";

/** Where a request goes, decided before anything is sent. */
export interface Binding {
  /** The logical name, /svc/<host>. */
  readonly name: string;
  readonly dest: Destination;
  /** End-to-end headers for the next hop, with this hop in Via; l5d-dtab only if it was honoured. */
  readonly headers: OutgoingHttpHeaders;
}

/** The host part of an authority (no port, no IPv6 brackets), lower-cased. */
function hostOf(authority: string): string {
  if (authority.startsWith("[")) {
    const end = authority.indexOf("]");
    return (end === -1 ? authority : authority.slice(1, end)).toLowerCase();
  }
  const colon = authority.lastIndexOf(":");
  return (colon === -1 ? authority : authority.slice(0, colon)).toLowerCase();
}

export class LogicalStep {
  constructor(
    private readonly resolver: Resolver,
    private readonly overrides: OverridePolicy,
    private readonly dtabHeaders: DtabHeaderCache,
    private readonly metrics: MeshMetrics,
    private readonly log: Logger,
  ) {}

  /**
   * Binds `received` through `dtab` (and its honoured override); `hint` is an
   * endpoint the sending proxy chose, so a union picks the branch holding it.
   * Throws a ProxyError for a request that cannot be bound.
   */
  bind(received: ReceivedRequest, settings: LiveSettings, dtab: Dtab, hint?: string): Binding {
    const { headers } = received;
    const host = hostOf(received.authority);
    if (host === "") throw new ProxyError("bad_request", "request names no host (absolute URI, :authority or Host header)");
    refuseLoop(headers, host, settings.config.limits.maxHops);

    const override = this.honouredOverride(received, settings);
    const name = `/svc/${host}`;
    const res = this.resolver.resolve(override === undefined ? this.base(dtab) : [dtab, override], ["svc", host], hint);
    if (res.kind !== "bound") throw new ProxyError("no_route", `no route for ${name}: ${res.reason}`);

    const next = endToEndHeaders(headers, DST_ENDPOINT_HEADER);
    next.via = viaForNextHop(headers.via);
    if (override === undefined) delete next[DTAB_HEADER];
    return { name, dest: res.dest, headers: next };
  }

  /** The request's l5d-dtab, parsed, if it has one and may re-route; a bad one is a 400. */
  private honouredOverride(received: ReceivedRequest, settings: LiveSettings): Dtab | undefined {
    const header: IncomingHttpHeaders[string] = received.headers[DTAB_HEADER];
    if (header === undefined) return undefined;
    if (!this.overrides.honours(received, settings)) {
      this.metrics.dtabOverridesIgnored.inc();
      this.log.debug("dtab_override_ignored", { from: received.remoteAddress });
      return undefined;
    }
    const parsed = this.dtabHeaders.parse(header);
    if (!parsed.ok) throw new ProxyError("bad_request", parsed.error);
    return parsed.dtab;
  }

  /** [dtab], one array per config generation rather than one per request. */
  private base(dtab: Dtab): readonly Dtab[] {
    if (this.baseDtabs?.[0] !== dtab) this.baseDtabs = [dtab];
    return this.baseDtabs;
  }
  private baseDtabs: readonly Dtab[] | undefined;
}
