// The outgoing side: a local application's request for /svc/<host> is bound
// through the dtab to a Service, an endpoint is chosen, and the request goes to
// the mesh proxy on that endpoint's node over the shared HTTP/2 mTLS connection.
import type { OutgoingHttpHeaders } from "node:http2";
import type { Endpoint, EndpointIndex } from "../discovery/endpoint-index";
import { ProxyError } from "../http/errors";
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

/** `step` honours l5d-dtab from trusted sources only. */
export interface OutgoingDeps extends RouterDeps {
  readonly index: EndpointIndex;
  readonly budget: RetryBudget;
  readonly pool: PeerPool;
}

export class OutgoingRouter extends Router {
  constructor(private readonly d: OutgoingDeps) {
    super("outgoing", d.metrics, d.log);
  }

  protected async dispatch(received: ReceivedRequest, sink: ResponseSink, labels: RouteLabels): Promise<number> {
    const settings = this.d.live.current;
    const { name, dest, headers } = this.d.step.bind(received, settings, settings.outgoingDtab);
    if (dest.kind === "inet") {
      labels.service = dest.id;
      const target = { host: dest.host, port: dest.port, describe: dest.id };
      return answerClient(sink, await forwardHttp1(this.d.agent, target, received, sink, headers, settings.config.limits));
    }
    labels.service = dest.service;
    return answerClient(sink, await this.toPeers(dest, name, received, sink, headers));
  }

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
