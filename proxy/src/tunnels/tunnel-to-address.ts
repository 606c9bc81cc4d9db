// The last leg of a tunnel: a TCP connection to an address, the endpoint on
// this node (incoming) or a /$/inet address (outgoing egress). A connection
// that is refused or not made in time is answered as not sent, so the sending
// proxy may try another endpoint.
import { connect } from "node:net";
import { ProxyError } from "../http/errors";
import type { ReceivedRequest, ResponseSink } from "../http/exchange";
import type { Http1Target } from "../http/forward-http1";
import type { ForwardOutcome } from "../http/forward-outcome";
import { relayTunnel } from "./byte-relay";
import { socketEnd } from "./tunnel-end";
import type { TunnelMeter } from "./tunnel-meter";

export interface AddressTunnelLimits {
  readonly connectTimeoutMs: number;
  readonly tunnelIdleTimeoutMs: number;
}

export function tunnelToAddress(
  target: Http1Target,
  received: ReceivedRequest,
  sink: ResponseSink,
  limits: AddressTunnelLimits,
  meter: TunnelMeter,
): Promise<ForwardOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (o: ForwardOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };
    const socket = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
    const notConnected = (why: string): void => {
      socket.destroy();
      settle({ kind: "not-sent", endpointAtFault: true, error: new ProxyError("unavailable", `${target.describe}: ${why}`, true) });
    };
    const timer = setTimeout(notConnected, limits.connectTimeoutMs, `not connected within ${limits.connectTimeoutMs} ms`);
    socket.once("error", (err) => {
      if (!settled) notConnected(err.message);
    });
    socket.once("connect", () => {
      if (settled) return;
      const client = sink.respond(200, {});
      if (client === undefined) {
        socket.destroy();
        settle({ kind: "client-gone" });
        return;
      }
      relayTunnel(received.tunnel!, socketEnd(socket), limits.tunnelIdleTimeoutMs, meter.start());
      settle({ kind: "responded", status: 200 });
    });
    sink.watch({
      clientGone: () => {
        if (settled) return;
        socket.destroy();
        settle({ kind: "client-gone" });
      },
    });
  });
}
