// Forwarding over HTTP/1.1: from the incoming side to a local endpoint, and to
// fixed /$/inet addresses. Keep-alive agents reuse connections to each endpoint.
//
// Hot path: one Http1Exchange object per attempt carries the state, and the
// listeners are module-level functions that find it on the request or response
// object, so no closures are built per request.
import { Agent, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders, request } from "node:http";
import { errorMessage } from "../telemetry/log";
import { ProxyError } from "./errors";
import { type ForwardOutcome, ForwardAttempt, type Inbound, type Outbound, elapsed } from "./exchange";
import { endToEndHeaders } from "./headers";

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
    outbound: Outbound,
    timeoutMs: number,
    startedAt: number,
  ) {
    super(outbound, timeoutMs, startedAt);
  }

  timedOut(): void {
    const err = new ProxyError("timeout", `timeout after ${this.timeoutMs} ms waiting for ${this.target.describe}`);
    this.upstream.destroy();
    this.outbound.fail(err);
    this.settle(err.status, false);
  }

  clientGone(): void {
    this.upstream.destroy();
    this.settle(0, true);
  }
}

function onResponse(this: Carrier<ClientRequest>, res: Carrier<IncomingMessage>): void {
  const x = this[EXCHANGE]!;
  clearTimeout(x.timer);
  x.status = res.statusCode ?? 502;
  const sink = x.outbound.respond(x.status, endToEndHeaders(res.headers));
  x.headSeconds = elapsed(x.startedAt);
  if (sink === undefined) {
    res.destroy();
    x.settle(0, true);
    return;
  }
  res[EXCHANGE] = x;
  res.pipe(sink);
  res.on("end", onResponseEnd);
  res.on("error", onResponseError);
  res.on("close", onResponseClose);
}

function onResponseEnd(this: Carrier<IncomingMessage>): void {
  const x = this[EXCHANGE]!;
  x.settle(x.status, true);
}

function onResponseError(this: Carrier<IncomingMessage>): void {
  const x = this[EXCHANGE]!;
  x.outbound.abort();
  x.settle(x.status, false);
}

function onResponseClose(this: Carrier<IncomingMessage>): void {
  if (this.complete) return;
  const x = this[EXCHANGE]!;
  x.outbound.abort();
  x.settle(x.status, false);
}

function onRequestError(this: Carrier<ClientRequest>, err: Error): void {
  const x = this[EXCHANGE]!;
  if (x.settled) return;
  // A refused connection never carried the request.
  const refused = (err as NodeJS.ErrnoException).code === "ECONNREFUSED";
  const e = new ProxyError("unavailable", `${x.target.describe} failed: ${errorMessage(err)}`, refused);
  x.outbound.fail(e);
  x.settle(x.outbound.headersSent ? 0 : e.status, false);
}

export function forwardHttp1(
  agent: Agent,
  target: Http1Target,
  inbound: Inbound,
  outbound: Outbound,
  headers: OutgoingHttpHeaders,
  timeoutMs: number,
  startedAt: number,
): Promise<ForwardOutcome> {
  headers.host = inbound.authority;
  const upstream: Carrier<ClientRequest> = request({
    host: target.host,
    port: target.port,
    method: inbound.method,
    path: inbound.path,
    headers,
    agent,
    setHost: false,
  });
  const x = new Http1Exchange(upstream, target, outbound, timeoutMs, startedAt);
  upstream[EXCHANGE] = x;
  upstream.on("response", onResponse);
  upstream.on("error", onRequestError);
  outbound.watch(x);
  if (inbound.hasBody) inbound.body.pipe(upstream);
  else upstream.end();
  return x.promise;
}

