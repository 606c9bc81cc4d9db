// Forwarding over HTTP/1.1: from the incoming side to a local endpoint, and to
// fixed /$/inet addresses. Keep-alive agents reuse connections to each endpoint.
//
// Hot path: one Http1Exchange object per attempt carries the state, and the
// listeners are module-level functions that find it on the request or response
// object, so no closures are built per request.
import { Agent, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders, request } from "node:http";
import { errorMessage } from "../telemetry/log";
import { ProxyError } from "./errors";
import { type ForwardLimits, type ForwardOutcome, ForwardAttempt, type ReceivedRequest, type ResponseSink, elapsed } from "./exchange";
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
    startedAt: number,
  ) {
    super(received, sink, limits, startedAt);
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
  clearTimeout(x.timer);
  x.status = res.statusCode ?? 502;
  const body = x.sink.respond(x.status, endToEndHeaders(res.headers));
  x.headSeconds = elapsed(x.startedAt);
  if (body === undefined) {
    res.destroy();
    x.settle(0, true);
    return;
  }
  relay(res, body, x, "response");
}

function onRequestError(this: Carrier<ClientRequest>, err: Error): void {
  const x = this[EXCHANGE]!;
  if (x.settled) return;
  // A refused connection never carried the request.
  const refused = (err as NodeJS.ErrnoException).code === "ECONNREFUSED";
  const e = new ProxyError("unavailable", `${x.target.describe} failed: ${errorMessage(err)}`, refused);
  x.sink.fail(e);
  x.settle(x.sink.headersSent ? 0 : e.status, false);
}

export function forwardHttp1(
  agent: Agent,
  target: Http1Target,
  received: ReceivedRequest,
  sink: ResponseSink,
  headers: OutgoingHttpHeaders,
  limits: ForwardLimits,
  startedAt: number,
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
  const x = new Http1Exchange(upstream, target, received, sink, limits, startedAt);
  upstream[EXCHANGE] = x;
  upstream.on("response", onResponse);
  upstream.on("error", onRequestError);
  sink.watch(x);
  if (received.hasBody) relay(received.body, upstream, x, "request", limits.maxRequestBodyBytes);
  else upstream.end();
  return x.promise;
}

