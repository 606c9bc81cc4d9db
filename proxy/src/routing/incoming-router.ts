// The incoming side: a request from an authenticated peer proxy is bound through
// the incoming dtab to endpoints on this node only, and handed to the local pod
// over plain HTTP/1.1 (it never leaves the node). A name bound to an address
// (/$/inet) rather than a Service is refused, whichever dtab bound it.
import type { OutgoingHttpHeaders } from "node:http";
import type { Endpoint } from "../discovery/endpoint-index";
import { ProxyError } from "../http/errors";
import type { LiveSettings } from "../config/live";
import type { ReceivedRequest, ResponseSink } from "../http/exchange";
import type { ProxyConfig } from "@zt-mesh/proxy-config";
import { answerClient, endpointFailed } from "../http/forward-outcome";
import { forwardHttp1 } from "../http/forward-http1";
import { DST_ENDPOINT_HEADER } from "../http/headers";
import type { ServiceDestination } from "./resolve";
import { type RouteLabels, Router, type RouterDeps } from "./router";
import { tunnelToAddress } from "../tunnels/tunnel-to-address";
import { TunnelMeter } from "../tunnels/tunnel-meter";

/** `step` binds with a namer restricted to this node's endpoints, and honours peers' l5d-dtab. */
export interface IncomingDeps extends RouterDeps {
  readonly nodeName: string;
}

export class IncomingRouter extends Router<IncomingDeps> {
  protected readonly direction = "incoming";

  /** Every request here came over a connection whose peer proved the mesh identity. */
  protected async dispatch(received: ReceivedRequest, sink: ResponseSink, settings: LiveSettings, labels: RouteLabels): Promise<number> {
    const hint = received.headers[DST_ENDPOINT_HEADER];
    const { name, dest, headers } = this.d.step.bind(received, settings, settings.incomingDtab, typeof hint === "string" ? hint : undefined);
    if (dest.kind !== "service") {
      // A peer holds a mesh certificate, not this node's trust: it may reach
      // the Services on this node, never an address of its choosing (the
      // node's admin port, the API server).
      this.d.metrics.incomingAddressRefused.inc();
      throw new ProxyError(
        "forbidden",
        `${name} is bound to the address ${dest.id}: the incoming listener forwards only to Services on node ${this.d.nodeName}`,
      );
    }
    labels.service = dest.service;
    return this.toEndpoint(dest, name, received, sink, headers, settings.config.limits);
  }

  private async toEndpoint(
    dest: ServiceDestination,
    name: string,
    received: ReceivedRequest,
    sink: ResponseSink,
    headers: OutgoingHttpHeaders,
    limits: ProxyConfig["limits"],
  ): Promise<number> {
    const { endpoints } = dest;
    if (endpoints.length === 0) {
      // The sender's view of the endpoints may lag this node's: let it try another.
      throw new ProxyError("unavailable", `no endpoints for ${name} (${dest.id}) on node ${this.d.nodeName}`, true);
    }
    // The sending proxy already balanced across the cluster; honour its choice
    // when it names one of this node's endpoints for this name.
    const hint = received.headers[DST_ENDPOINT_HEADER];
    const endpoint = (typeof hint === "string" && byKey(endpoints, hint)) || this.d.balancer.pick(endpoints)!;
    const stats = this.d.balancer.start(endpoint.key);
    const t0 = performance.now();
    const target = { host: endpoint.ip, port: endpoint.port, describe: `endpoint ${endpoint.key} of ${dest.id}` };
    const outcome =
      received.tunnel === undefined
        ? await forwardHttp1(this.d.agent, target, received, sink, headers, limits)
        : await tunnelToAddress(target, received, sink, limits, new TunnelMeter(this.d.metrics, this.d.log, "incoming", dest.service));
    this.d.balancer.finish(endpoint.key, stats, !endpointFailed(outcome), performance.now() - t0);
    // Not sent (the endpoint refused the connection) is answered REFUSED_STREAM,
    // so the sending proxy may try elsewhere.
    return answerClient(sink, outcome);
  }
}

function byKey(endpoints: readonly Endpoint[], key: string): Endpoint | undefined {
  for (const e of endpoints) if (e.key === key) return e;
  return undefined;
}
