// Forwarding from the outgoing side to the peer proxy on the endpoint's node,
// as one stream on the shared HTTP/2 connection.
//
// Hot path: one PeerExchange object per attempt carries the state, and the
// stream's listeners are module-level functions that find it on the stream, so
// no closures are built per request.
import { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders, constants as h2 } from "node:http2";
import { ProxyError } from "./errors";
import type { ReceivedRequest, ResponseSink } from "./exchange";
import { type ForwardLimits, ForwardAttempt } from "./forward-attempt";
import type { ForwardOutcome } from "./forward-outcome";
import { endToEndHeaders } from "./headers";
import { countStream } from "./peer-pool";
import { relay, resetStream } from "./relay";

/**
 * Errors that prove the peer never processed the stream, so it may be retried
 * elsewhere even if it was not idempotent: refused, or cut off by a GOAWAY that
 * excluded it.
 */
function neverProcessed(err: NodeJS.ErrnoException, rstCode: number | undefined): boolean {
  return (
    rstCode === h2.NGHTTP2_REFUSED_STREAM ||
    err.code === "ERR_HTTP2_GOAWAY_SESSION" ||
    err.code === "ERR_HTTP2_INVALID_SESSION"
  );
}

/**
 * A GOAWAY (the peer closing an idle session, re-keying, or draining) is no
 * failure of the endpoint: the request may go again on a new connection. A
 * stream the client opened while the peer's GOAWAY was on its way is refused
 * with REFUSED_STREAM, on a session that by then has closed.
 */
export function sessionClosing(stream: ClientHttp2Stream, err: NodeJS.ErrnoException | undefined): boolean {
  return err?.code === "ERR_HTTP2_GOAWAY_SESSION" || err?.code === "ERR_HTTP2_INVALID_SESSION" || stream.session?.closed === true;
}

/**
 * A stream on `session`, counted among the session's open streams until it
 * closes; or, when the session closed between acquire and request, the
 * outcome that nothing was sent.
 */
export function openPeerStream(
  session: ClientHttp2Session,
  peer: string,
  headers: OutgoingHttpHeaders,
  endStream: boolean,
): ClientHttp2Stream | ForwardOutcome {
  let stream: ClientHttp2Stream;
  try {
    stream = session.request(headers, { endStream });
  } catch (err) {
    const error = new ProxyError("unavailable", `peer ${peer} connection closed: ${(err as Error).message}`);
    return { kind: "not-sent", error, endpointAtFault: true };
  }
  countStream(session, stream);
  return stream;
}

const EXCHANGE = Symbol("zt-mesh.peer-exchange");
type Carrier = ClientHttp2Stream & { [EXCHANGE]?: PeerExchange };

class PeerExchange extends ForwardAttempt {
  constructor(
    readonly stream: ClientHttp2Stream,
    readonly peerIp: string,
    readonly peerPort: number,
    received: ReceivedRequest,
    sink: ResponseSink,
    limits: ForwardLimits,
  ) {
    super(received, sink, limits);
  }

  /** "ip:port", for messages. */
  get peer(): string {
    return `${this.peerIp}:${this.peerPort}`;
  }

  get describe(): string {
    return `peer ${this.peer}`;
  }

  resetUpstream(): void {
    resetStream(this.stream, true);
  }

  /** The stream broke without a refusal: lost if no response had begun (the peer died, the connection broke), else cut short. */
  broke(e: ProxyError): void {
    if (this.status === 0 && !this.sink.headersSent) {
      this.settle({ kind: "lost-before-head", error: e });
      return;
    }
    this.sink.abort();
    this.settle({ kind: "broken-after-head", status: this.status });
  }
}

function onResponse(this: Carrier, h: IncomingHttpHeaders): void {
  const x = this[EXCHANGE]!;
  x.responding(Number(h[":status"]) || 502);
  const body = x.sink.respond(x.status, endToEndHeaders(h));
  if (body === undefined) {
    resetStream(this, true);
    x.settle({ kind: "client-gone" });
    return;
  }
  relay(this, body, x, "response");
}

function onError(this: Carrier, err: NodeJS.ErrnoException): void {
  const x = this[EXCHANGE]!;
  if (x.settled) return;
  if (x.status === 0 && neverProcessed(err, this.rstCode)) {
    const e = new ProxyError("unavailable", `peer ${x.peer} refused the request: ${err.message}`);
    x.settle({ kind: "not-sent", error: e, endpointAtFault: !sessionClosing(this, err) });
    return;
  }
  x.broke(new ProxyError("unavailable", `peer ${x.peer} failed: ${err.message}`));
}

function onClose(this: Carrier): void {
  const x = this[EXCHANGE]!;
  if (x.settled) return;
  if (x.status === 0 && this.rstCode === h2.NGHTTP2_REFUSED_STREAM) {
    const e = new ProxyError("unavailable", `peer ${x.peer} refused the request`);
    x.settle({ kind: "not-sent", error: e, endpointAtFault: !sessionClosing(this, undefined) });
    return;
  }
  x.broke(new ProxyError("unavailable", `peer ${x.peer} reset the request (code ${this.rstCode})`));
}

/**
 * Sends the request as one stream on `session`. `headers` gets the
 * pseudo-headers set on it (node:http2 copies it), so a retry may pass it again.
 */
export function forwardToPeer(
  session: ClientHttp2Session,
  peerIp: string,
  peerPort: number,
  received: ReceivedRequest,
  sink: ResponseSink,
  headers: OutgoingHttpHeaders,
  limits: ForwardLimits,
): Promise<ForwardOutcome> {
  headers[":method"] = received.method;
  headers[":path"] = received.path;
  headers[":authority"] = received.authority;
  headers[":scheme"] = "http";

  const stream: Carrier | ForwardOutcome = openPeerStream(session, `${peerIp}:${peerPort}`, headers, !received.hasBody);
  if ("kind" in stream) return Promise.resolve(stream);
  const x = new PeerExchange(stream, peerIp, peerPort, received, sink, limits);
  stream[EXCHANGE] = x;
  stream.on("response", onResponse);
  stream.on("error", onError);
  stream.on("close", onClose);
  sink.watch(x);
  if (received.hasBody) relay(received.body, stream, x, "request", limits.maxRequestBodyBytes);
  return x.promise;
}
