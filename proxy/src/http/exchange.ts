// One request/response exchange as the routers see it, whichever protocol the
// client spoke. The listeners adapt node:http and node:http2 objects to this.
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse, IncomingMessage } from "node:http";
import type { ServerHttp2Stream } from "node:http2";
import { constants as h2 } from "node:http2";
import type { Readable, Writable } from "node:stream";
import { ERR_HEADER, headerSafe } from "./headers";
import type { ProxyError } from "./errors";

export interface Inbound {
  readonly method: string;
  /** host[:port] the client addressed. */
  readonly authority: string;
  /** Origin-form path and query. */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Readable;
  readonly hasBody: boolean;
  readonly remoteAddress: string | undefined;
}

export interface Outbound {
  /**
   * Sends the response head; the returned stream takes the body. Undefined when
   * the client has already gone, so the caller should drop the upstream.
   */
  respond(status: number, headers: OutgoingHttpHeaders): Writable | undefined;
  /** Answers with the proxy's own error, if nothing was sent yet; otherwise aborts. */
  fail(err: ProxyError): void;
  /** Cuts the response short (after headers were sent). */
  abort(): void;
  readonly headersSent: boolean;
  /** Runs `fn` if the client goes away before the response is complete. */
  onAbort(fn: () => void): void;
}

function errorHead(err: ProxyError): { headers: OutgoingHttpHeaders; body: string } {
  const line = headerSafe(err.message);
  return {
    headers: { [ERR_HEADER]: line, "content-type": "text/plain; charset=utf-8" },
    body: `${line}\n`,
  };
}

export function http1Outbound(req: IncomingMessage, res: ServerResponse, closeAfter: () => boolean): Outbound {
  return {
    respond(status, headers) {
      if (res.destroyed) return undefined;
      if (closeAfter()) headers.connection = "close";
      res.writeHead(status, headers);
      return res;
    },
    fail(err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const { headers, body } = errorHead(err);
      headers["content-length"] = Buffer.byteLength(body);
      // A request body we did not read would be taken for the next request.
      if (!req.complete || closeAfter()) headers.connection = "close";
      res.writeHead(err.status, headers);
      res.end(body);
    },
    abort() {
      res.destroy();
    },
    get headersSent() {
      return res.headersSent;
    },
    onAbort(fn) {
      res.on("close", () => {
        if (!res.writableFinished) fn();
      });
    },
  };
}

export function http2Outbound(stream: ServerHttp2Stream): Outbound {
  return {
    respond(status, headers) {
      // A peer may cancel the stream (its timeout, its client leaving) while the
      // local app is still answering; respond() would throw on it.
      if (stream.destroyed || stream.closed) return undefined;
      headers[":status"] = status;
      stream.respond(headers);
      return stream;
    },
    fail(err) {
      if (stream.destroyed || stream.closed) return;
      if (stream.headersSent) {
        stream.close(h2.NGHTTP2_INTERNAL_ERROR);
        return;
      }
      const { headers, body } = errorHead(err);
      headers[":status"] = err.status;
      headers["content-length"] = Buffer.byteLength(body);
      stream.respond(headers);
      stream.end(body);
    },
    abort() {
      if (!stream.destroyed) stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    },
    get headersSent() {
      return stream.headersSent;
    },
    onAbort(fn) {
      stream.on("close", () => {
        if (!stream.writableFinished) fn();
      });
    },
  };
}

/** How a forwarding attempt ended, for the balancer, retries and metrics. */
export interface ForwardOutcome {
  /** Status sent to the client (the proxy's own on failure); 0 if the client went away first. */
  readonly status: number;
  /** Seconds until the response head was sent. */
  readonly headSeconds: number;
  /** False when the upstream failed (connection, reset, timeout): counts against it. */
  readonly upstreamOk: boolean;
  /**
   * Set when nothing reached the upstream and nothing was sent to the client,
   * so the caller may try elsewhere. The error is what to answer if it does not.
   */
  readonly retryable?: ProxyError;
}
