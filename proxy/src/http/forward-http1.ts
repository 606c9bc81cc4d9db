// Forwarding over HTTP/1.1: from the incoming side to a local endpoint, and to
// fixed /$/inet addresses. Keep-alive agents reuse connections to each endpoint.
import { Agent, type OutgoingHttpHeaders, request } from "node:http";
import { errorMessage } from "../telemetry/log";
import { ProxyError } from "./errors";
import { type ForwardOutcome, type Inbound, type Outbound } from "./exchange";
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

export function forwardHttp1(
  agent: Agent,
  target: Http1Target,
  inbound: Inbound,
  outbound: Outbound,
  headers: OutgoingHttpHeaders,
  timeoutMs: number,
  startedAt: number,
): Promise<ForwardOutcome> {
  return new Promise((resolve) => {
    headers.host = inbound.authority;
    const upstream = request({
      host: target.host,
      port: target.port,
      method: inbound.method,
      path: inbound.path,
      headers,
      agent,
      setHost: false,
    });
    let headSeconds = 0;
    let settled = false;
    const settle = (o: ForwardOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };
    const timer = setTimeout(() => {
      const err = new ProxyError("timeout", `timeout after ${timeoutMs} ms waiting for ${target.describe}`);
      upstream.destroy();
      outbound.fail(err);
      settle({ status: err.status, headSeconds: elapsed(startedAt), upstreamOk: false });
    }, timeoutMs);

    upstream.on("response", (res) => {
      clearTimeout(timer);
      const status = res.statusCode ?? 502;
      const sink = outbound.respond(status, endToEndHeaders(res.headers));
      headSeconds = elapsed(startedAt);
      if (sink === undefined) {
        res.destroy();
        settle({ status: 0, headSeconds, upstreamOk: true });
        return;
      }
      res.pipe(sink);
      res.on("end", () => settle({ status, headSeconds, upstreamOk: true }));
      res.on("error", () => {
        outbound.abort();
        settle({ status, headSeconds, upstreamOk: false });
      });
      res.on("close", () => {
        if (!res.complete) {
          outbound.abort();
          settle({ status, headSeconds, upstreamOk: false });
        }
      });
    });
    upstream.on("error", (err) => {
      if (settled) return;
      const e = new ProxyError("unavailable", `${target.describe} failed: ${errorMessage(err)}`);
      outbound.fail(e);
      settle({ status: outbound.headersSent ? 0 : e.status, headSeconds: elapsed(startedAt), upstreamOk: false });
    });
    outbound.onAbort(() => {
      upstream.destroy();
      settle({ status: 0, headSeconds: elapsed(startedAt), upstreamOk: true });
    });
    if (inbound.hasBody) inbound.body.pipe(upstream);
    else upstream.end();
  });
}

export function elapsed(startedAt: number): number {
  return (performance.now() - startedAt) / 1000;
}
