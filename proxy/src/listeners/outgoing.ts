// Port 4140: plain HTTP/1.1 from applications on this node, in proxy form
// (http_proxy, absolute URI) or origin form with a Host header.
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { Socket } from "node:net";
import type { LiveConfig } from "../config/live";
import { ProxyError } from "../http/errors";
import { type ReceivedRequest, http1ResponseSink, receivedHttp1 } from "../http/exchange";
import { ConnectSink } from "../tunnels/connect-sink";
import { socketEnd } from "../tunnels/tunnel-end";
import { splitDtabLines } from "../routing/dtab-header";
import { checkAuthority, checkConnectTarget, checkHttp1Head } from "../http/request-head";
import type { OutgoingRouter } from "../routing/outgoing-router";
import type { MeshMetrics } from "../telemetry/metrics";
import { Admission } from "./admission";
import { RequestListener } from "./request-listener";
import { ConnectionTracker, answerClientError } from "./server-util";
import { upgradeRequestHead } from "../tunnels/upgrade-request";

export class OutgoingListener extends RequestListener {
  readonly server: Server;
  protected readonly connections: ConnectionTracker;
  protected readonly admission: Admission;
  private readonly isDraining = (): boolean => this.draining;

  constructor(
    private readonly live: LiveConfig,
    private readonly router: OutgoingRouter,
    metrics: MeshMetrics,
  ) {
    super();
    const { limits } = live.current.config;
    this.server = createServer(
      {
        maxHeaderSize: limits.maxHeaderBytes,
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: 0,
        keepAliveTimeout: limits.idleTimeoutMs,
        connectionsCheckingInterval: Math.min(limits.headersTimeoutMs, 1000),
      },
      (req, res) => this.handle(req, res),
    );
    this.connections = new ConnectionTracker(this.server, metrics, "outgoing");
    this.admission = new Admission("outgoing", live, metrics);
    this.server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket));
    this.server.on("connect", (req: IncomingMessage, socket: Socket, head: Buffer) => this.handleConnect(req, socket, head));
    this.server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => this.handleUpgrade(req, socket, head));
  }

  protected stopAccepting(): void {
    this.server.close();
    this.server.closeIdleConnections();
  }

  protected closeRemaining(): void {
    this.server.closeAllConnections();
    // Tunnels' connections left the HTTP server when they were upgraded.
    for (const socket of this.connections.sockets) socket.destroy();
  }

  /** A CONNECT: the tunnel's bytes flow once the router has it established. */
  private handleConnect(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const target = req.url ?? "";
    const checked = checkHttp1Head(req, this.live.current.config.limits) ?? checkConnectTarget(target);
    // Bytes the client sent after the CONNECT head belong to the tunnel.
    this.tunnel(req, socket, new ConnectSink(socket), checked ?? { authority: target, path: "" }, head);
  }

  /**
   * An Upgrade (WebSocket): a tunnel to the endpoint that starts with the
   * request itself, so the app's own 101 and what follows reach the client.
   */
  private handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const target = checkHttp1Head(req, this.live.current.config.limits) ?? parseTarget(req);
    const first = target instanceof ProxyError ? head : Buffer.concat([upgradeRequestHead(req, target.authority, target.path), head]);
    this.tunnel(req, socket, new ConnectSink(socket, false), target, first);
  }

  /** Routes a tunnel whose client is `socket`, the first bytes to relay being `first`; or refuses it. */
  private tunnel(
    req: IncomingMessage,
    socket: Socket,
    sink: ConnectSink,
    target: { authority: string; path: string } | ProxyError,
    first: Buffer,
  ): void {
    // The tunnel's relay sees errors through 'close'; unhandled, one would end the process.
    socket.on("error", ignoreSocketError);
    if (!this.admission.admit(sink, socket)) return;
    if (target instanceof ProxyError) {
      sink.fail(target);
      return;
    }
    if (first.length > 0) socket.unshift(first);
    splitDtabLines(req.headers, req.rawHeaders);
    const received: ReceivedRequest = {
      method: req.method ?? "CONNECT",
      authority: target.authority,
      path: target.path,
      headers: req.headers,
      body: req,
      hasBody: false,
      remoteAddress: socket.remoteAddress,
      tunnel: socketEnd(socket),
    };
    void this.router.route(received, sink);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const sink = http1ResponseSink(req, res, this.isDraining);
    if (!this.admission.admit(sink, res)) return;

    const refusal = checkHttp1Head(req, this.live.current.config.limits);
    const target = refusal ?? parseTarget(req);
    if (target instanceof ProxyError) {
      sink.fail(target);
      return;
    }
    splitDtabLines(req.headers, req.rawHeaders);
    const received = receivedHttp1(req, target.authority, target.path);
    void this.router.route(received, sink);
  }
}

/** Splits the request target into authority (checked) and origin-form path. */
function parseTarget(req: IncomingMessage): { authority: string; path: string } | ProxyError {
  const url = req.url ?? "";
  if (url.startsWith("/")) {
    const authority = req.headers.host ?? "";
    return checkAuthority(authority) ?? { authority, path: url };
  }
  const lower = url.slice(0, 8).toLowerCase();
  if (lower.startsWith("http://")) {
    const rest = url.slice(7);
    let end = rest.length;
    for (const ch of ["/", "?", "#"]) {
      const i = rest.indexOf(ch);
      if (i !== -1 && i < end) end = i;
    }
    const authority = rest.slice(0, end);
    const path = rest.slice(end);
    return checkAuthority(authority) ?? { authority, path: path === "" ? "/" : path.startsWith("/") ? path : `/${path}` };
  }
  if (lower.startsWith("https://")) {
    return new ProxyError("bad_request", "https:// targets cannot be proxied: send plain http and the mesh encrypts it");
  }
  return new ProxyError("bad_request", `malformed request target ${JSON.stringify(url.slice(0, 64))}`);
}

function ignoreSocketError(): void {}
