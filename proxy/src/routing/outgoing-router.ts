// The outgoing side: a local application's request for /svc/<host> is bound
// through the dtab to a Service, an endpoint is chosen, and the request goes to
// the mesh proxy on that endpoint's node over the shared HTTP/2 mTLS connection.
import type { Agent } from "node:http";
import type { OutgoingHttpHeaders } from "node:http2";
import { type LiveConfig, addressIn } from "../config/live";
import type { Endpoint, EndpointIndex } from "../discovery/endpoint-index";
import { ProxyError } from "../http/errors";
import { type ReceivedRequest, type ResponseSink, elapsed } from "../http/exchange";
import { type ForwardOutcome, answerClient, endpointFailed } from "../http/forward-outcome";
import { forwardHttp1 } from "../http/forward-http1";
import { forwardToPeer } from "../http/forward-peer";
import { DST_ENDPOINT_HEADER, appendVia, endToEndHeaders, meshHops } from "../http/headers";
import type { PeerPool } from "../http/peer-pool";
import type { Logger } from "../telemetry/log";
import { errorMessage } from "../telemetry/log";
import { type MeshMetrics, UNBOUND } from "../telemetry/metrics";
import type { Balancer } from "./balancer";
import { DTAB_HEADER, type DtabHeaderCache } from "./dtab-header";
import type { Dtab } from "./dtab";
import type { Destination, Resolver, ServiceDestination } from "./resolve";
import type { RetryBudget } from "./retry-budget";
import { retryDecision } from "./retry-policy";

export interface OutgoingDeps {
  readonly live: LiveConfig;
  readonly resolver: Resolver;
  readonly index: EndpointIndex;
  readonly balancer: Balancer;
  readonly budget: RetryBudget;
  readonly pool: PeerPool;
  readonly agent: Agent;
  readonly dtabHeaders: DtabHeaderCache;
  readonly metrics: MeshMetrics;
  readonly log: Logger;
}

/** The host part of an authority (no port, no IPv6 brackets), lower-cased. */
export function hostOf(authority: string): string {
  if (authority.startsWith("[")) {
    const end = authority.indexOf("]");
    return (end === -1 ? authority : authority.slice(1, end)).toLowerCase();
  }
  const colon = authority.lastIndexOf(":");
  return (colon === -1 ? authority : authority.slice(0, colon)).toLowerCase();
}

/** Where a request goes, decided before anything is sent. */
interface Plan {
  readonly dest: Destination;
  /** The logical name, /svc/<host>. */
  readonly name: string;
  readonly headers: OutgoingHttpHeaders;
}

export class OutgoingRouter {
  constructor(private readonly d: OutgoingDeps) {}

  async route(received: ReceivedRequest, sink: ResponseSink): Promise<void> {
    const started = performance.now();
    let service = UNBOUND;
    let status: number;
    try {
      const plan = this.plan(received);
      const { dest } = plan;
      if (dest.kind === "inet") {
        service = dest.id;
        const { config } = this.d.live.current;
        const target = { host: dest.host, port: dest.port, describe: dest.id };
        status = answerClient(sink, await forwardHttp1(this.d.agent, target, received, sink, plan.headers, config.limits));
      } else {
        service = dest.service;
        status = answerClient(sink, await this.toPeers(dest, plan.name, received, sink, plan.headers));
      }
    } catch (err) {
      const e = err instanceof ProxyError ? err : new ProxyError("unavailable", errorMessage(err));
      sink.fail(e);
      status = e.status;
      if (this.d.log.enabled("debug")) this.d.log.debug("request_failed", { direction: "outgoing", error: e.message });
    }
    if (status !== 0) this.d.metrics.forService("outgoing", service).observe(status, elapsed(started));
  }

  /** Binds the request to a destination and prepares its headers; throws a ProxyError. */
  private plan(received: ReceivedRequest): Plan {
    const { config, outgoingDtab, dtabOverrideFrom } = this.d.live.current;
    const host = hostOf(received.authority);
    if (host === "") throw new ProxyError("bad_request", "request names no host (absolute URI or Host header)");
    if (meshHops(received.headers.via) >= config.limits.maxHops) {
      throw new ProxyError("loop", `routing loop: request for ${host} has passed ${config.limits.maxHops} mesh hops`);
    }

    let dtabs: readonly Dtab[] = this.baseDtabs(outgoingDtab);
    let forwardDtab: string | string[] | undefined;
    const override = received.headers[DTAB_HEADER];
    if (override !== undefined) {
      if (addressIn(dtabOverrideFrom, received.remoteAddress)) {
        const parsed = this.d.dtabHeaders.parse(override);
        if (!parsed.ok) throw new ProxyError("bad_request", parsed.error);
        dtabs = [outgoingDtab, parsed.dtab];
        forwardDtab = override;
      } else {
        this.d.metrics.dtabOverridesIgnored.inc();
        this.d.log.debug("dtab_override_ignored", { from: received.remoteAddress });
      }
    }

    const name = `/svc/${host}`;
    const res = this.d.resolver.resolve(dtabs, ["svc", host]);
    if (res.kind !== "bound") throw new ProxyError("no_route", `no route for ${name}: ${res.reason}`);

    const headers = endToEndHeaders(received.headers, DST_ENDPOINT_HEADER);
    headers.via = appendVia(received.headers.via);
    if (forwardDtab === undefined) delete headers[DTAB_HEADER];
    return { dest: res.dest, name, headers };
  }

  /** [dtab], one array per config generation rather than one per request. */
  private baseDtabs(dtab: Dtab): readonly Dtab[] {
    if (this.base?.[0] !== dtab) this.base = [dtab];
    return this.base;
  }
  private base: readonly Dtab[] | undefined;

  /** Balances and retries across the Service's endpoints; the last attempt's outcome is the answer. */
  private async toPeers(
    dest: ServiceDestination,
    name: string,
    received: ReceivedRequest,
    sink: ResponseSink,
    base: OutgoingHttpHeaders,
  ): Promise<ForwardOutcome> {
    const { config } = this.d.live.current;
    const { balancer, budget, index, pool, metrics } = this.d;
    if (dest.endpoints.length === 0) throw new ProxyError("unavailable", `no endpoints for ${name} (${dest.id})`);
    budget.deposit();
    const port = config.incoming.port;
    // Endpoints already tried for this request; only made when one fails.
    let tried: Set<string> | undefined;
    let last: ForwardOutcome | undefined;
    // One new connection to an endpoint whose connection was closing.
    let redialed = false;

    for (;;) {
      const endpoint: Endpoint | undefined = balancer.pick(dest.endpoints, tried);
      if (endpoint === undefined) {
        if (last !== undefined) return last;
        throw new ProxyError("unavailable", `no reachable endpoints for ${name} (${dest.id})`);
      }
      const peerIp = endpoint.nodeName === undefined ? undefined : index.peerForNode(endpoint.nodeName);
      if (peerIp === undefined) {
        (tried ??= new Set()).add(endpoint.key);
        last = {
          kind: "not-sent",
          endpointAtFault: true,
          error: new ProxyError("unavailable", `no ready mesh proxy on node ${endpoint.nodeName ?? "(unknown)"} for ${dest.id} endpoint ${endpoint.key}`),
        };
        continue;
      }
      const stats = balancer.start(endpoint.key);
      const t0 = performance.now();
      let outcome: ForwardOutcome;
      try {
        // A connected session comes back as is: no promise, no extra turn.
        const acquired = pool.acquire(peerIp, port);
        const session = acquired instanceof Promise ? await acquired : acquired;
        // Each attempt has its own headers: the forwarder adds to them, and the endpoint differs.
        const headers = { ...base, [DST_ENDPOINT_HEADER]: endpoint.key };
        outcome = await forwardToPeer(session, peerIp, port, received, sink, headers, config.limits);
      } catch (err) {
        // Connecting failed: nothing of the request was sent or read.
        const error = new ProxyError("unavailable", `${errorMessage(err)} (for ${dest.id} endpoint ${endpoint.key})`);
        outcome = { kind: "not-sent", error, endpointAtFault: true };
      }
      balancer.finish(endpoint.key, stats, !endpointFailed(outcome), performance.now() - t0);

      const decision = retryDecision(outcome, received, redialed);
      if (decision === "no") return outcome;
      if (decision === "same-endpoint") redialed = true;
      else (tried ??= new Set()).add(endpoint.key);
      last = outcome;
      if (!budget.tryWithdraw()) {
        metrics.retriesBudgetExhausted.inc();
        return outcome;
      }
      metrics.retries.inc();
    }
  }
}
