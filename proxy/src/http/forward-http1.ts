// Forwarding over HTTP/1.1: from the incoming side to a local endpoint, and to
// fixed /$/inet addresses. Keep-alive agents reuse connections to each endpoint.
//
// Hot path: one Http1Exchange object per attempt carries the state, and the
// listeners are module-level functions that find it on the request or response
// object, so no closures are built per request.
import { Agent, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders, request } from "node:http";
import { errorMessage } from "../telemetry/log";
import { ProxyError } from "./errors";
import type { ReceivedRequest, ResponseSink } from "./exchange";
import { type ForwardLimits, ForwardAttempt } from "./forward-attempt";
import type { ForwardOutcome } from "./forward-outcome";
import { endToEndHeaders } from "./headers";
import { relay } from "./relay";

export function createEndpointAgent(): Agent {
  return new Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: "lifo" });
}

export interface Http1Target {
  readonly host: string;
  readonly port: number;
  /** Names the target in errors, e.g. "endpoint 10.0.0.5:8080". */
  readonly describe: string;
}

const EXCHANGE = Symbol("zt-mesh.http1-exchange");
type Carrier<T> = T & { [EXCHANGE]?: Http1Exchange };

class Http1Exchange extends ForwardAttempt {
  constructor(
    readonly upstream: ClientRequest,
    readonly target: Http1Target,
    received: ReceivedRequest,
    sink: ResponseSink,
    limits: ForwardLimits,
  ) {
    super(received, sink, limits);
  }

  get describe(): string {
    return this.target.describe;
  }

  /** Destroys the socket: the app sees the request aborted, without its last chunk or full length. */
  resetUpstream(): void {
    this.upstream.destroy();
  }
}

function onResponse(this: Carrier<ClientRequest>, res: IncomingMessage): void {
  const x = this[EXCHANGE]!;
  x.responding(res.statusCode ?? 502);
  const body = x.sink.respond(x.status, endToEndHeaders(res.headers));
  if (body === undefined) {
    res.destroy();
    x.settle({ kind: "client-gone" });
    return;
  }
  relay(res, body, x, "response");
}

function onRequestError(this: Carrier<ClientRequest>, err: Error): void {
  const x = this[EXCHANGE]!;
  if (x.settled) return;
  if (x.sink.headersSent) {
    x.sink.abort();
    x.settle({ kind: "broken-after-head", status: x.status });
    return;
  }
  // A refused connection never carried the request.
  const refused = (err as NodeJS.ErrnoException).code === "ECONNREFUSED";
  const e = new ProxyError("unavailable", `${x.target.describe} failed: ${errorMessage(err)}`, refused);
  x.settle(refused ? { kind: "not-sent", error: e, endpointAtFault: true } : { kind: "lost-before-head", error: e });
}

export function forwardHttp1(
  agent: Agent,
  target: Http1Target,
  received: ReceivedRequest,
  sink: ResponseSink,
  headers: OutgoingHttpHeaders,
  limits: ForwardLimits,
): Promise<ForwardOutcome> {
  headers.host = received.authority;
  const upstream: Carrier<ClientRequest> = request({
    host: target.host,
    port: target.port,
    method: received.method,
    path: received.path,
    headers,
    agent,
    setHost: false,
  });
  const x = new Http1Exchange(upstream, target, received, sink, limits);
  upstream[EXCHANGE] = x;
  upstream.on("response", onResponse);
  upstream.on("error", onRequestError);
  sink.watch(x);
  if (received.hasBody) relay(received.body, upstream, x, "request", limits.maxRequestBodyBytes);
  else upstream.end();
  return x.promise;
}

