// Port 4141: mutual TLS 1.3 from peer proxies. The handshake requires a client
// certificate (without one the client gets a certificate_required alert); after
// it, the peer must have a chain to a trusted CA and the mesh identity, or the
// connection is closed before a byte of it is read. Peers speak HTTP/2 (ALPN
// h2); HTTP/1.1 over TLS is accepted too, for operators checking a node with
// curl and the mesh certificate. Admitted connections are checked again as time
// passes and the bundle changes, and closed gracefully once their peer would no
// longer be admitted; HTTP/2 sessions with no stream are closed when idle.
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
import { type ReceivedRequest, http1ResponseSink, http2ResponseSink, receivedHttp1 } from "../http/exchange";
import { splitDtabLines } from "../routing/dtab-header";
import { HOP_WINDOW_BYTES, hopHeaderSettings } from "../http/hop-limits";
import { checkAuthority, checkConnectTarget, checkDeclaredLength, checkHttp1Head } from "../http/request-head";
import { http2End } from "../tunnels/tunnel-end";
import type { IncomingRouter } from "../routing/incoming-router";
import { peerServerOptions } from "../tls/server-options";
import { type PeerChain, type PeerRule, authorizationCode, checkPeer, classifyTlsError, classifyVerifyError, peerChainOf, peerRule, peerStanding } from "../tls/peer-identity";
import type { TlsStore } from "../tls/store";
import type { Logger } from "../telemetry/log";
import type { MeshMetrics } from "../telemetry/metrics";
import { Admission } from "./admission";
import { RequestListener } from "./request-listener";
import { ConnectionTracker, answerClientError, refuseTunnels } from "./server-util";


/** An admitted HTTP/2 session: its peer's certificate and how many streams it has open. */
class PeerSession {
  streams = 0;
  retired = false;
  readonly idle: NodeJS.Timeout;

  constructor(
    readonly session: ServerHttp2Session,
    readonly chain: PeerChain,
    idleMs: number,
    listener: IncomingListener,
  ) {
    this.idle = setTimeout(closeIfIdle, idleMs, this, listener);
    this.idle.unref();
  }
}

const PEER = Symbol("zt-mesh.peer-session");
type PeerStream = ServerHttp2Stream & { [PEER]?: PeerSession };

export class IncomingListener extends RequestListener {
  readonly server: TlsServer;
  private readonly h2: Http2Server;
  private readonly h1: HttpServer;
  private readonly sessions = new Map<ServerHttp2Session, PeerSession>();
  /** HTTP/1.1 connections and their peer's certificate chain. */
  private readonly h1Peers = new Map<TLSSocket, PeerChain>();
  /** HTTP/1.1 connections whose peer is no longer admitted: closed after their response. */
  private readonly retired = new WeakSet<Socket>();
  private readonly sweeper: NodeJS.Timeout;
  protected readonly connections: ConnectionTracker;
  protected readonly admission: Admission;
  private readonly closeAfter = (req: IncomingMessage): boolean => this.draining || this.retired.has(req.socket);
  /** Restart-required keys: fixed for the listener's life. */
  private readonly rule: PeerRule;

  constructor(
    private readonly live: LiveConfig,
    private readonly router: IncomingRouter,
    private readonly tls: TlsStore,
    readonly metrics: MeshMetrics,
    private readonly log: Logger,
  ) {
    super();
    const { limits, tls: tlsConfig } = live.current.config;
    this.rule = peerRule(live.current.config);
    this.server = createTlsServer({
      ...peerServerOptions(tls.current),
      handshakeTimeout: limits.connectTimeoutMs,
      // Small HTTP/2 frames must not wait for delayed ACKs (see http/peer-pool.ts).
      noDelay: true,
    });
    tls.onReload((m) => {
      this.server.setSecureContext(peerServerOptions(m));
      this.sweep();
    });
    // Certificates expire between reloads too.
    this.sweeper = setInterval(() => this.sweep(), tlsConfig.reloadIntervalMs);
    this.sweeper.unref();
    this.connections = new ConnectionTracker(this.server, metrics, "incoming");
    this.admission = new Admission("incoming", live, metrics);

    const hop = hopHeaderSettings(limits);
    this.h2 = createH2Server({
      settings: {
        maxConcurrentStreams: limits.maxConcurrentStreams,
        maxHeaderListSize: hop.maxHeaderListSize,
        initialWindowSize: HOP_WINDOW_BYTES,
        enablePush: false,
      },
      maxSessionMemory: 64,
      maxHeaderListPairs: hop.maxHeaderListPairs,
    });
    this.h2.on("session", (session: ServerHttp2Session) => {
      // Admitted in 'secureConnection', so the certificate is there.
      const chain = peerChainOf(session.socket as TLSSocket)!;
      const peer = new PeerSession(session, chain, this.live.current.config.limits.peerSessionIdleTimeoutMs, this);
      this.sessions.set(session, peer);
      session.once("close", () => {
        clearTimeout(peer.idle);
        this.sessions.delete(session);
      });
      session.once("connect", () => session.setLocalWindowSize(HOP_WINDOW_BYTES));
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

    this.server.on("secureConnection", (socket: TLSSocket) => {
      const failure = checkPeer(socket, this.rule);
      if (failure !== undefined) {
        this.metrics.tlsHandshakeFailures.labels("server", failure).inc();
        this.log.warn("peer_refused", { reason: failure, remote: socket.remoteAddress });
        socket.destroy();
        return;
      }
      this.metrics.tlsHandshakes.labels("server").inc();
      if (socket.alpnProtocol === "h2") {
        this.h2.emit("connection", socket);
        return;
      }
      this.h1Peers.set(socket, peerChainOf(socket)!);
      socket.once("close", () => this.h1Peers.delete(socket));
      this.h1.emit("connection", socket);
    });
    this.server.on("tlsClientError", (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      // node verifies the chain after the handshake and, refusing it, destroys
      // the socket: the error is then a reset, and the reason is on the socket.
      const refused = authorizationCode(socket);
      const reason = refused !== undefined ? classifyVerifyError(refused) : classifyTlsError(err.code, err.message);
      this.metrics.tlsHandshakeFailures.labels("server", reason).inc();
      this.log.info("tls_handshake_failed", { reason, code: err.code, remote: socket.remoteAddress });
      socket.destroy();
    });
  }

  protected stopAccepting(): void {
    clearInterval(this.sweeper);
    this.server.close();
    for (const s of this.sessions.keys()) s.close();
    this.h1.close();
  }

  protected closeRemaining(): void {
    for (const socket of this.connections.sockets) socket.destroy();
  }

  /**
   * Closes, gracefully, the connections whose peer would not be admitted now:
   * HTTP/2 sessions get GOAWAY and their streams finish; HTTP/1.1 connections
   * close after the response in flight, idle ones at once.
   */
  private sweep(): void {
    const trust = this.tls.current;
    const rule = this.rule;
    const now = Date.now();
    for (const peer of this.sessions.values()) {
      if (peer.retired || peer.session.destroyed) continue;
      const failure = peerStanding(peer.chain, trust, rule, now);
      if (failure === undefined) continue;
      peer.retired = true;
      this.retire(failure, peer.session.socket?.remoteAddress);
      peer.session.close();
    }
    let h1Retired = false;
    for (const [socket, chain] of this.h1Peers) {
      if (this.retired.has(socket)) continue;
      const failure = peerStanding(chain, trust, rule, now);
      if (failure === undefined) continue;
      this.retired.add(socket);
      this.retire(failure, socket.remoteAddress);
      h1Retired = true;
    }
    if (h1Retired) this.h1.closeIdleConnections();
  }

  private retire(reason: string, remote: string | undefined): void {
    this.metrics.peerSessionsClosed.labels(reason).inc();
    this.log.warn("peer_session_closed", { reason, remote });
  }

  private onStream(stream: PeerStream, headers: IncomingHttpHeaders, rawHeaders: readonly string[]): void {
    // A peer resetting its stream (its client left mid-body) surfaces as an
    // 'error' here; 'close' does the cleanup, and without a listener the error
    // would be thrown and end the process.
    stream.on("error", ignoreStreamError);
    const peer = stream.session === undefined ? undefined : this.sessions.get(stream.session as ServerHttp2Session);
    if (peer !== undefined) {
      peer.streams++;
      stream[PEER] = peer;
      stream.once("close", onPeerStreamClose);
    }
    const sink = http2ResponseSink(stream);
    if (!this.admission.admit(sink, stream)) return;
    const method = headers[":method"] ?? "GET";
    splitDtabLines(headers, rawHeaders);
    const authority = headers[":authority"] ?? headers.host ?? "";
    if (method === "CONNECT") {
      const refusal = checkConnectTarget(authority);
      if (refusal !== undefined) {
        sink.fail(refusal);
        return;
      }
      const remoteAddress = stream.session?.socket?.remoteAddress;
      void this.router.route({ method, authority, path: "", headers, body: stream, hasBody: false, remoteAddress, tunnel: http2End(stream) }, sink);
      return;
    }
    const refusal =
      checkAuthority(authority) ??
      checkDeclaredLength(headers["content-length"], this.live.current.config.limits.maxRequestBodyBytes);
    if (refusal !== undefined) {
      sink.fail(refusal);
      return;
    }
    const received: ReceivedRequest = {
      method,
      authority,
      path: headers[":path"] ?? "/",
      headers,
      body: stream,
      hasBody: !stream.endAfterHeaders,
      remoteAddress: stream.session?.socket?.remoteAddress,
    };
    void this.router.route(received, sink);
  }

  private onHttp1(req: IncomingMessage, res: ServerResponse): void {
    const sink = http1ResponseSink(req, res, this.closeAfter);
    if (!this.admission.admit(sink, res)) return;
    const url = req.url ?? "/";
    const refusal =
      req.method === "CONNECT"
        ? new ProxyError("method", "CONNECT tunnels are not supported by the mesh")
        : !url.startsWith("/")
          ? new ProxyError("bad_request", "the incoming listener takes origin-form requests")
          : (checkHttp1Head(req, this.live.current.config.limits) ?? checkAuthority(req.headers.host ?? ""));
    if (refusal !== undefined) {
      sink.fail(refusal);
      return;
    }
    splitDtabLines(req.headers, req.rawHeaders);
    const received = receivedHttp1(req, req.headers.host ?? "", url);
    void this.router.route(received, sink);
  }
}

function ignoreStreamError(): void {}

function onPeerStreamClose(this: PeerStream): void {
  const peer = this[PEER]!;
  if (--peer.streams === 0) peer.idle.refresh();
}

function closeIfIdle(peer: PeerSession, listener: IncomingListener): void {
  const { session } = peer;
  if (peer.streams > 0 || session.closed || session.destroyed) return;
  listener.metrics.peerSessionsClosed.labels("idle").inc();
  session.close();
}
