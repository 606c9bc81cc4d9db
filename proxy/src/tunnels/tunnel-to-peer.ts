// The outgoing side of a tunnel: an HTTP/2 CONNECT stream on the shared,
// mutually authenticated connection to the peer proxy on the endpoint's node
// (no handshake per tunnel). Until the peer answers 200 nothing of the
// client's bytes has been sent, so a refused stream may go to another endpoint.
import { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders, constants as h2 } from "node:http2";
import { ProxyError } from "../http/errors";
import type { ReceivedRequest, ResponseSink } from "../http/exchange";
import { type ForwardLimits, ForwardAttempt } from "../http/forward-attempt";
import type { ForwardOutcome } from "../http/forward-outcome";
import { openPeerStream, sessionClosing } from "../http/forward-peer";
import { endToEndHeaders } from "../http/headers";
import { relay, resetStream } from "../http/relay";
import { relayTunnel } from "./byte-relay";
import { http2End } from "./tunnel-end";
import type { TunnelMeter } from "./tunnel-meter";

export interface TunnelLimits extends ForwardLimits {
  readonly tunnelIdleTimeoutMs: number;
}

class PeerTunnel extends ForwardAttempt {
  constructor(
    readonly stream: ClientHttp2Stream,
    readonly peer: string,
    received: ReceivedRequest,
    sink: ResponseSink,
    override readonly limits: TunnelLimits,
    readonly meter: TunnelMeter,
  ) {
    super(received, sink, limits);
  }

  get describe(): string {
    return `peer ${this.peer}`;
  }

  resetUpstream(): void {
    resetStream(this.stream, true);
  }

  // Once the tunnel is up, its relay owns both ends.
  override clientGone(): void {
    if (!this.settled) super.clientGone();
  }

  established(h: IncomingHttpHeaders): void {
    const status = Number(h[":status"]) || 502;
    this.responding(status);
    const client = this.sink.respond(status, status === 200 ? {} : endToEndHeaders(h));
    if (client === undefined) {
      this.resetUpstream();
      this.settle({ kind: "client-gone" });
      return;
    }
    if (status !== 200) {
      // The peer's refusal (its l5d-err and body) is the client's answer.
      relay(this.stream, client, this, "response");
      return;
    }
    relayTunnel(this.received.tunnel!, http2End(this.stream), this.limits.tunnelIdleTimeoutMs, this.meter.start());
    this.settle({ kind: "responded", status });
  }

  ended(err: NodeJS.ErrnoException | undefined): void {
    if (this.settled) return;
    const { rstCode } = this.stream;
    if (this.status === 0) {
      const closing = sessionClosing(this.stream, err);
      if (closing || rstCode === h2.NGHTTP2_REFUSED_STREAM) {
        const error = new ProxyError("unavailable", `peer ${this.peer} refused the tunnel${err ? `: ${err.message}` : ""}`);
        this.settle({ kind: "not-sent", error, endpointAtFault: !closing });
        return;
      }
      const why = err?.message ?? `reset (code ${rstCode})`;
      this.settle({ kind: "lost-before-head", error: new ProxyError("unavailable", `peer ${this.peer} failed the tunnel: ${why}`) });
      return;
    }
    this.sink.abort();
    this.settle({ kind: "broken-after-head", status: this.status });
  }
}

/** Opens the tunnel for `received` (a CONNECT) to the peer proxy on `session`. */
export function tunnelToPeer(
  session: ClientHttp2Session,
  peerIp: string,
  peerPort: number,
  received: ReceivedRequest,
  sink: ResponseSink,
  headers: OutgoingHttpHeaders,
  limits: TunnelLimits,
  meter: TunnelMeter,
): Promise<ForwardOutcome> {
  // RFC 9113 8.5: a CONNECT carries only :method and :authority.
  headers[":method"] = "CONNECT";
  // An Upgrade's Host may leave the port implied; a CONNECT names it.
  headers[":authority"] = /:[0-9]+$/.test(received.authority) ? received.authority : `${received.authority}:80`;
  delete headers.host;
  const peer = `${peerIp}:${peerPort}`;
  const stream = openPeerStream(session, peer, headers, false);
  if ("kind" in stream) return Promise.resolve(stream);
  const x = new PeerTunnel(stream, peer, received, sink, limits, meter);
  stream.once("response", (h: IncomingHttpHeaders) => x.established(h));
  stream.on("error", (err: NodeJS.ErrnoException) => x.ended(err));
  stream.once("close", () => x.ended(undefined));
  sink.watch(x);
  return x.promise;
}
