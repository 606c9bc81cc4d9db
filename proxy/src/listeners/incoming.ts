// Port 4141: mutual TLS 1.3 from peer proxies. The handshake asks for a client
// certificate; after it, the peer must have a chain to a trusted CA and the
// mesh identity, or the connection is closed before a byte of it is read. Peers
// speak HTTP/2 (ALPN h2); HTTP/1.1 over TLS is accepted too, for operators
// checking a node with curl and the mesh certificate.
import { type IncomingMessage, type Server as HttpServer, type ServerResponse, createServer as createHttpServer } from "node:http";
import {
  type Http2Server,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
  createServer as createH2Server,
} from "node:http2";
import type { Socket } from "node:net";
import { type Server as TlsServer, type TLSSocket, createServer as createTlsServer } from "node:tls";
import type { LiveConfig } from "../config/live";
import { ProxyError } from "../http/errors";
import { type Inbound, http1Outbound, http2Outbound } from "../http/exchange";
import { splitDtabLines } from "../routing/dtab-header";
import type { IncomingRouter } from "../routing/incoming-router";
import { MIN_TLS_VERSION, type TlsMaterial } from "../tls/material";
import { checkPeer, classifyTlsError } from "../tls/peer-identity";
import type { TlsStore } from "../tls/store";
import type { Logger } from "../telemetry/log";
import type { MeshMetrics } from "../telemetry/metrics";
import { ConnectionTracker, answerClientError, listen, refuseTunnels } from "./server-util";

const WINDOW = 16 * 1024 * 1024;

export class IncomingListener {
  readonly server: TlsServer;
  private readonly h2: Http2Server;
  private readonly h1: HttpServer;
  private readonly sessions = new Set<ServerHttp2Session>();
  private readonly connections: ConnectionTracker;
  private pending = 0;
  private draining = false;
  private readonly isDraining = (): boolean => this.draining;

  constructor(
    private readonly live: LiveConfig,
    private readonly router: IncomingRouter,
    tls: TlsStore,
    private readonly metrics: MeshMetrics,
    private readonly log: Logger,
  ) {
    const { limits, tls: tlsConfig } = live.current.config;
    this.server = createTlsServer({
      ...this.serverOptions(tls.current),
      handshakeTimeout: limits.connectTimeoutMs,
      // Small HTTP/2 frames must not wait for delayed ACKs (see http/peer-pool.ts).
      noDelay: true,
    });
    tls.onReload((m) => this.server.setSecureContext(this.serverOptions(m)));
    this.connections = new ConnectionTracker(this.server, metrics, "incoming");

    this.h2 = createH2Server({
      settings: {
        maxConcurrentStreams: limits.maxConcurrentStreams,
        maxHeaderListSize: limits.maxHeaderBytes,
        initialWindowSize: WINDOW,
        enablePush: false,
      },
      maxSessionMemory: 64,
      maxHeaderListPairs: 256,
    });
    this.h2.on("session", (session: ServerHttp2Session) => {
      this.sessions.add(session);
      session.once("close", () => this.sessions.delete(session));
      session.once("connect", () => session.setLocalWindowSize(WINDOW));
      if (this.draining) session.close();
    });
    this.h2.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) =>
      this.onStream(stream, headers, rawHeaders),
    );

    this.h1 = createHttpServer(
      {
        maxHeaderSize: limits.maxHeaderBytes,
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: 0,
        keepAliveTimeout: limits.idleTimeoutMs,
        // headersTimeout is enforced when connections are checked: by default only every 30 s.
        connectionsCheckingInterval: Math.min(limits.headersTimeoutMs, 1000),
      },
      (req, res) => this.onHttp1(req, res),
    );
    this.h1.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket));
    refuseTunnels(this.h1);
    // This server never listens itself (TLS sockets are handed to it), and
    // node:http starts the timer that enforces headersTimeout on 'listening':
    // without it a slow client could trickle a request head forever.
    this.h1.emit("listening");

    const identity = tlsConfig.identity;
    this.server.on("secureConnection", (socket: TLSSocket) => {
      const failure = checkPeer(socket, identity);
      if (failure !== undefined) {
        this.metrics.tlsHandshakeFailures.labels("server", failure).inc();
        this.log.warn("peer_refused", { reason: failure, remote: socket.remoteAddress });
        socket.destroy();
        return;
      }
      this.metrics.tlsHandshakes.labels("server").inc();
      if (socket.alpnProtocol === "h2") this.h2.emit("connection", socket);
      else this.h1.emit("connection", socket);
    });
    this.server.on("tlsClientError", (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      const reason = classifyTlsError(err.code, err.message);
      this.metrics.tlsHandshakeFailures.labels("server", reason).inc();
      this.log.info("tls_handshake_failed", { reason, code: err.code, remote: socket.remoteAddress });
      socket.destroy();
    });
  }

  listen(ip: string, port: number): Promise<number> {
    return listen(this.server, ip, port);
  }

  get inFlight(): number {
    return this.pending;
  }

  async drain(deadline: number): Promise<void> {
    this.draining = true;
    this.server.close();
    for (const s of this.sessions) s.close();
    this.h1.close();
    await this.connections.waitIdle(() => this.pending === 0, deadline);
    for (const socket of this.connections.sockets) socket.destroy();
  }

  private serverOptions(m: TlsMaterial) {
    return {
      ...m.options,
      minVersion: MIN_TLS_VERSION,
      // Verification result is checked after the handshake (checkPeer), so a
      // refusal can be counted by its precise reason.
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: ["h2", "http/1.1"],
    };
  }

  private admit(): boolean {
    if (this.pending >= this.live.current.config.limits.maxPendingRequests) {
      this.metrics.shed.labels("incoming").inc();
      return false;
    }
    this.pending++;
    this.metrics.pending.incoming.value++;
    return true;
  }

  private readonly release = (): void => {
    this.pending--;
    this.metrics.pending.incoming.value--;
  };

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: readonly string[]): void {
    // A peer resetting its stream (its client left mid-body) surfaces as an
    // 'error' here; 'close' does the cleanup, and without a listener the error
    // would be thrown and end the process.
    stream.on("error", ignoreStreamError);
    const outbound = http2Outbound(stream);
    if (!this.admit()) {
      outbound.fail(new ProxyError("shed", `shedding load: ${this.pending} requests in flight on the incoming listener`));
      return;
    }
    stream.once("close", this.release);
    const method = headers[":method"] ?? "GET";
    if (method === "CONNECT") {
      outbound.fail(new ProxyError("method", "CONNECT tunnels are not supported by the mesh"));
      return;
    }
    splitDtabLines(headers, rawHeaders);
    const inbound: Inbound = {
      method,
      authority: headers[":authority"] ?? headers.host ?? "",
      path: headers[":path"] ?? "/",
      headers,
      body: stream,
      hasBody: !stream.endAfterHeaders,
      remoteAddress: stream.session?.socket?.remoteAddress,
    };
    void this.router.route(inbound, outbound, true);
  }

  private onHttp1(req: IncomingMessage, res: ServerResponse): void {
    const outbound = http1Outbound(req, res, this.isDraining);
    if (!this.admit()) {
      outbound.fail(new ProxyError("shed", `shedding load: ${this.pending} requests in flight on the incoming listener`));
      return;
    }
    res.once("close", this.release);
    const url = req.url ?? "/";
    if (req.method === "CONNECT" || !url.startsWith("/")) {
      outbound.fail(
        req.method === "CONNECT"
          ? new ProxyError("method", "CONNECT tunnels are not supported by the mesh")
          : new ProxyError("bad_request", "the incoming listener takes origin-form requests"),
      );
      return;
    }
    splitDtabLines(req.headers, req.rawHeaders);
    const te = req.headers["transfer-encoding"];
    const cl = req.headers["content-length"];
    const inbound: Inbound = {
      method: req.method ?? "GET",
      authority: req.headers.host ?? "",
      path: url,
      headers: req.headers,
      body: req,
      hasBody: te !== undefined || (cl !== undefined && cl !== "0"),
      remoteAddress: req.socket.remoteAddress,
    };
    void this.router.route(inbound, outbound, true);
  }
}

function ignoreStreamError(): void {}
