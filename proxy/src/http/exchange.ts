// One request/response exchange as the routers see it, whichever protocol the
// client spoke. The listeners adapt node:http and node:http2 objects to this.
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse, IncomingMessage } from "node:http";
import type { ServerHttp2Stream } from "node:http2";
import { constants as h2 } from "node:http2";
import type { Writable } from "node:stream";
import type { ProxyError } from "./errors";
import { ERR_HEADER, headerSafe } from "./headers";
import type { TunnelEnd } from "../tunnels/tunnel-end";
import { type BodySource, resetStream } from "./relay";

/** The request the proxy received, whichever protocol the client spoke. */
export interface ReceivedRequest {
  readonly method: string;
  /** host[:port] the client addressed. */
  readonly authority: string;
  /** Origin-form path and query. */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: BodySource;
  readonly hasBody: boolean;
  readonly remoteAddress: string | undefined;
  /** For a CONNECT: the client's side of the tunnel, relayed once the tunnel is up. */
  readonly tunnel?: TunnelEnd;
}

/** Told when the client goes away before its response is complete. */
export interface AbortWatcher {
  clientGone(): void;
}

/** Where the proxy writes its answer to that client. */
export interface ResponseSink {
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
  /**
   * `watcher.clientGone()` runs if the client goes away before the response is
   * complete. One watcher at a time: a later call (a retry) replaces it.
   */
  watch(watcher: AbortWatcher): void;
}

function errorHead(err: ProxyError): { headers: OutgoingHttpHeaders; body: string } {
  const line = headerSafe(err.message);
  return {
    headers: { [ERR_HEADER]: line, "content-type": "text/plain; charset=utf-8" },
    body: `${line}\n`,
  };
}

// The exchange rides on the response object, so one module-level 'close'
// listener serves every request (no closure per request).
const SINK = Symbol("zt-mesh.response-sink");

interface Watched {
  watcher: AbortWatcher | undefined;
}
type Carrier = Writable & { [SINK]?: Watched };

function onClientClose(this: Carrier): void {
  const o = this[SINK];
  if (o?.watcher !== undefined && !this.writableFinished) o.watcher.clientGone();
}

/** ResponseSink.watch for both protocols: the 'close' listener is added once, a retry swaps the watcher. */
function watchClient(response: Carrier, sink: Watched, watcher: AbortWatcher): void {
  if (sink.watcher === undefined) {
    response[SINK] = sink;
    response.on("close", onClientClose);
  }
  sink.watcher = watcher;
}

class Http1ResponseSink implements ResponseSink {
  watcher: AbortWatcher | undefined = undefined;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly closeAfter: (req: IncomingMessage) => boolean,
  ) {}

  respond(status: number, headers: OutgoingHttpHeaders): Writable | undefined {
    const { res } = this;
    if (res.destroyed) return undefined;
    if (this.closeAfter(this.req)) headers.connection = "close";
    res.writeHead(status, headers);
    return res;
  }

  fail(err: ProxyError): void {
    const { res } = this;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const { headers, body } = errorHead(err);
    headers["content-length"] = Buffer.byteLength(body);
    // A request body we did not read would be taken for the next request.
    if (!this.req.complete || this.closeAfter(this.req)) headers.connection = "close";
    res.writeHead(err.status, headers);
    res.end(body);
  }

  abort(): void {
    this.res.destroy();
  }

  get headersSent(): boolean {
    return this.res.headersSent;
  }

  watch(watcher: AbortWatcher): void {
    watchClient(this.res, this, watcher);
  }
}

class Http2ResponseSink implements ResponseSink {
  watcher: AbortWatcher | undefined = undefined;

  constructor(private readonly stream: ServerHttp2Stream) {}

  respond(status: number, headers: OutgoingHttpHeaders): Writable | undefined {
    const { stream } = this;
    // A peer may cancel the stream (its timeout, its client leaving) while the
    // local app is still answering; respond() would throw on it.
    if (stream.destroyed || stream.closed) return undefined;
    headers[":status"] = status;
    stream.respond(headers);
    return stream;
  }

  fail(err: ProxyError): void {
    const { stream } = this;
    if (stream.destroyed || stream.closed) return;
    if (err.unprocessed && !stream.headersSent) {
      // REFUSED_STREAM tells the sending proxy the request was not processed,
      // so it may retry it on another endpoint (RFC 9113 8.7).
      stream.close(h2.NGHTTP2_REFUSED_STREAM);
      return;
    }
    if (stream.headersSent) {
      resetStream(stream, false);
      return;
    }
    const { headers, body } = errorHead(err);
    headers[":status"] = err.status;
    headers["content-length"] = Buffer.byteLength(body);
    stream.respond(headers);
    stream.end(body);
    // The answer does not depend on the rest of the request: RST_STREAM
    // NO_ERROR after it asks the sender to stop sending (RFC 9113 8.1).
    if (!stream.readableEnded) stream.close(h2.NGHTTP2_NO_ERROR);
  }

  abort(): void {
    resetStream(this.stream, false);
  }

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  watch(watcher: AbortWatcher): void {
    watchClient(this.stream, this, watcher);
  }
}

/** An HTTP/1.1 request as the routers see it, once its target is checked. */
export function receivedHttp1(req: IncomingMessage, authority: string, path: string): ReceivedRequest {
  const te = req.headers["transfer-encoding"];
  const cl = req.headers["content-length"];
  return {
    method: req.method ?? "GET",
    authority,
    path,
    headers: req.headers,
    body: req,
    hasBody: te !== undefined || (cl !== undefined && cl !== "0"),
    remoteAddress: req.socket.remoteAddress,
  };
}

export function http1ResponseSink(req: IncomingMessage, res: ServerResponse, closeAfter: (req: IncomingMessage) => boolean): ResponseSink {
  return new Http1ResponseSink(req, res, closeAfter);
}

export function http2ResponseSink(stream: ServerHttp2Stream): ResponseSink {
  return new Http2ResponseSink(stream);
}

/** Seconds since `startedAt` (a performance.now() reading). */
export function elapsed(startedAt: number): number {
  return (performance.now() - startedAt) / 1000;
}
