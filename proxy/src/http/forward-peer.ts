// Forwarding from the outgoing side to the peer proxy on the endpoint's node,
// as one stream on the shared HTTP/2 connection.
import { type ClientHttp2Session, type OutgoingHttpHeaders, constants as h2 } from "node:http2";
import { ProxyError } from "./errors";
import type { ForwardOutcome, Inbound, Outbound } from "./exchange";
import { elapsed } from "./forward-http1";
import { endToEndHeaders } from "./headers";

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

export function forwardToPeer(
  session: ClientHttp2Session,
  peer: string,
  inbound: Inbound,
  outbound: Outbound,
  headers: OutgoingHttpHeaders,
  timeoutMs: number,
  startedAt: number,
): Promise<ForwardOutcome> {
  return new Promise((resolve) => {
    headers[":method"] = inbound.method;
    headers[":path"] = inbound.path;
    headers[":authority"] = inbound.authority;
    headers[":scheme"] = "http";
    let settled = false;
    let status = 0;
    let headSeconds = 0;
    const settle = (o: ForwardOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };

    let stream;
    try {
      stream = session.request(headers, { endStream: !inbound.hasBody });
    } catch (err) {
      // The session closed between acquire and request: nothing was sent.
      const e = new ProxyError("unavailable", `peer ${peer} connection closed: ${(err as Error).message}`);
      settle({ status: e.status, headSeconds: elapsed(startedAt), upstreamOk: false, retryable: e });
      return;
    }

    const timer = setTimeout(() => {
      stream.close(h2.NGHTTP2_CANCEL);
      const e = new ProxyError("timeout", `timeout after ${timeoutMs} ms waiting for peer ${peer}`);
      outbound.fail(e);
      settle({ status: e.status, headSeconds: elapsed(startedAt), upstreamOk: false });
    }, timeoutMs);

    stream.on("response", (h) => {
      clearTimeout(timer);
      status = Number(h[":status"]) || 502;
      const sink = outbound.respond(status, endToEndHeaders(h));
      headSeconds = elapsed(startedAt);
      if (sink === undefined) {
        stream.close(h2.NGHTTP2_CANCEL);
        settle({ status: 0, headSeconds, upstreamOk: true });
        return;
      }
      stream.pipe(sink);
    });
    stream.on("end", () => settle({ status, headSeconds, upstreamOk: true }));
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (settled) return;
      if (status === 0 && neverProcessed(err, stream.rstCode)) {
        const e = new ProxyError("unavailable", `peer ${peer} refused the request: ${err.message}`);
        settle({ status: e.status, headSeconds: elapsed(startedAt), upstreamOk: false, retryable: e });
        return;
      }
      const e = new ProxyError("unavailable", `peer ${peer} failed: ${err.message}`);
      outbound.fail(e);
      settle({ status: status === 0 ? e.status : status, headSeconds: elapsed(startedAt), upstreamOk: false });
    });
    stream.on("close", () => {
      if (settled) return;
      if (status === 0 && stream.rstCode === h2.NGHTTP2_REFUSED_STREAM) {
        const e = new ProxyError("unavailable", `peer ${peer} refused the request`);
        settle({ status: e.status, headSeconds: elapsed(startedAt), upstreamOk: false, retryable: e });
        return;
      }
      const e = new ProxyError("unavailable", `peer ${peer} reset the request (code ${stream.rstCode})`);
      outbound.fail(e);
      settle({ status: status === 0 ? e.status : status, headSeconds: elapsed(startedAt), upstreamOk: false });
    });
    outbound.onAbort(() => {
      if (!stream.closed) stream.close(h2.NGHTTP2_CANCEL);
      settle({ status: 0, headSeconds: elapsed(startedAt), upstreamOk: true });
    });
    if (inbound.hasBody) inbound.body.pipe(stream);
  });
}
