// The outgoing side: a local application's request for /svc/<host> is bound
// through the dtab to a Service, an endpoint is chosen, and the request goes to
// the mesh proxy on that endpoint's node over the shared HTTP/2 mTLS connection.
import type { OutgoingHttpHeaders } from "node:http2";
import type { ProxyConfig } from "@zt-mesh/proxy-config";
import type { Endpoint, EndpointIndex } from "../discovery/endpoint-index";
import { ProxyError } from "../http/errors";
import type { LiveSettings } from "../config/live";
import type { ReceivedRequest, ResponseSink } from "../http/exchange";
import { type ForwardOutcome, answerClient, endpointFailed } from "../http/forward-outcome";
import { forwardHttp1 } from "../http/forward-http1";
import { forwardToPeer } from "../http/forward-peer";
import { DST_ENDPOINT_HEADER } from "../http/headers";
import type { PeerPool } from "../http/peer-pool";
import { errorMessage } from "../telemetry/log";
import type { ServiceDestination } from "./resolve";
import type { RetryBudget } from "./retry-budget";
import { retryDecision } from "./retry-policy";
import { type RouteLabels, Router, type RouterDeps } from "./router";
import { tunnelToAddress } from "../tunnels/tunnel-to-address";
import { TunnelMeter } from "../tunnels/tunnel-meter";
import { tunnelToPeer } from "../tunnels/tunnel-to-peer";

/** One attempt on a peer's session: a request (forwardToPeer) or a tunnel (tunnelToPeer). */
type PeerForwarder = typeof forwardToPeer;

/** `step` honours l5d-dtab from trusted sources only. */
export interface OutgoingDeps extends RouterDeps {
  readonly index: EndpointIndex;
  readonly budget: RetryBudget;
  readonly pool: PeerPool;
}

export class OutgoingRouter extends Router<OutgoingDeps> {
  protected readonly direction = "outgoing";

  protected async dispatch(received: ReceivedRequest, sink: ResponseSink, settings: LiveSettings, labels: RouteLabels): Promise<number> {
    const { name, dest, headers } = this.d.step.bind(received, settings, settings.outgoingDtab);
    const { limits } = settings.config;
    if (dest.kind === "inet") {
      labels.service = dest.id;
      const target = { host: dest.host, port: dest.port, describe: dest.id };
      const outcome =
        received.tunnel === undefined
          ? await forwardHttp1(this.d.agent, target, received, sink, headers, limits)
          : await tunnelToAddress(target, received, sink, limits, new TunnelMeter(this.d.metrics, this.d.log, "outgoing", dest.id));
      return answerClient(sink, outcome);
    }
    labels.service = dest.service;
    let forward: PeerForwarder = forwardToPeer;
    if (received.tunnel !== undefined) {
      const meter = new TunnelMeter(this.d.metrics, this.d.log, "outgoing", dest.service);
      forward = (session, peerIp, port, r, s, h) => tunnelToPeer(session, peerIp, port, r, s, h, limits, meter);
    }
    return answerClient(sink, await this.toPeers(dest, name, received, sink, headers, settings.config, forward));
  }

  /** Balances and retries across the Service's endpoints; the last attempt's outcome is the answer. */
  private async toPeers(
    dest: ServiceDestination,
    name: string,
    received: ReceivedRequest,
    sink: ResponseSink,
    base: OutgoingHttpHeaders,
    config: ProxyConfig,
    forward: PeerForwarder,
  ): Promise<ForwardOutcome> {
    const { balancer, budget, index, pool, metrics } = this.d;
    if (dest.endpoints.length === 0) throw new ProxyError("unavailable", `no endpoints for ${name} (${dest.id})`);
    budget.deposit();
    const port = config.incoming.port;
    // Endpoints already tried for this request; only made when one fails.
    let tried: Set<string> | undefined;
    let last: ForwardOutcome | undefined;
    // One new connection to an endpoint whose connection was closing.
    let redialed = false;

    // Whether the endpoints refused have been given a second try.
    let secondRound = false;

    for (;;) {
      const endpoint: Endpoint | undefined = balancer.pick(dest.endpoints, tried);
      if (endpoint === undefined) {
        // A refusal proves nothing was processed, and it may have come from a
        // connection that was closing (a GOAWAY crossing the request on the
        // wire): each endpoint gets one more try before the client is answered.
        if (last?.kind === "not-sent" && !secondRound) {
          secondRound = true;
          tried = undefined;
          continue;
        }
        if (last !== undefined) return last;
        throw new ProxyError("unavailable", `no reachable endpoints for ${name} (${dest.id})`);
      }
      const node = endpoint.nodeName;
      const peerIp = node === undefined ? undefined : index.peerForNode(node);
      if (peerIp === undefined || node === undefined) {
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
        const acquired = pool.acquire(peerIp, port, node);
        const session = acquired instanceof Promise ? await acquired : acquired;
        // Each attempt has its own headers: the forwarder adds to them, and the endpoint differs.
        const headers = { ...base, [DST_ENDPOINT_HEADER]: endpoint.key };
        outcome = await forward(session, peerIp, port, received, sink, headers, config.limits);
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
