// One multiplexed HTTP/2-over-mutual-TLS connection per peer proxy, opened on
// first use and reused, so handshakes are paid once per peer rather than per
// request. When the TLS material changes, existing connections are closed
// gracefully (their streams finish) and the next request opens a new one.
import { type ClientHttp2Session, type ClientHttp2Stream, connect as h2connect } from "node:http2";
import { connectToPeer } from "../tls/client-connect";
import { type PeerRule, classifyTlsError } from "../tls/peer-identity";
import type { TlsStore } from "../tls/store";
import type { Logger } from "../telemetry/log";
import { errorMessage } from "../telemetry/log";
import type { MeshMetrics } from "../telemetry/metrics";
import { HOP_WINDOW_BYTES, type HopHeaderSettings } from "./hop-limits";

export interface PeerPoolOptions {
  readonly rule: PeerRule;
  readonly connectTimeoutMs: number;
  readonly headers: HopHeaderSettings;
}

class PeerConnectError extends Error {
  override name = "PeerConnectError";
}

interface Entry {
  /** The node whose proxy is to be reached: a pod IP reused on another node gets a session of its own. */
  readonly node: string;
  readonly session: CountedSession;
  readonly ready: Promise<ClientHttp2Session>;
  connected: boolean;
  /** Liveness pings while connected (see checkLiveness). */
  liveness?: NodeJS.Timeout;
  pingOutstanding: boolean;
}

// node:http2 keeps its count of a session's streams to itself, so the
// forwarders count the streams they open on the session, for the admin page.
const OPEN_STREAMS = Symbol("zt-mesh.open-streams");
const COUNTED_ON = Symbol("zt-mesh.counted-on");
type CountedSession = ClientHttp2Session & { [OPEN_STREAMS]: number };
type CountedStream = ClientHttp2Stream & { [COUNTED_ON]?: CountedSession };

// Module-level, so counting adds no closure per stream.
function onCountedStreamClose(this: CountedStream): void {
  const session = this[COUNTED_ON];
  if (session !== undefined) session[OPEN_STREAMS]--;
}

/** Counts `stream` among `session`'s open streams until it closes. */
export function countStream(session: ClientHttp2Session, stream: ClientHttp2Stream): void {
  const counted = session as CountedSession;
  counted[OPEN_STREAMS]++;
  (stream as CountedStream)[COUNTED_ON] = counted;
  stream.once("close", onCountedStreamClose);
}

export interface PeerConnection {
  readonly address: string;
  readonly port: number;
  readonly state: "connecting" | "connected" | "closing";
  readonly streams: number;
}

// The peer connection carries many small HTTP/2 frames each way and every one
// is waited for: with Nagle's algorithm a frame written while an earlier one is
// unacknowledged waits for the peer's delayed ACK (up to 40 ms), which made the
// mesh's p99 at 500 req/s. node:http sets TCP_NODELAY on its own sockets;
// node:http2 over a TLS socket we create does not.

export class PeerPool {
  /** By peer address, then port: no key string is built per request. */
  private readonly entries = new Map<string, Map<number, Entry>>();
  private closed = false;

  constructor(
    private readonly tls: TlsStore,
    private readonly opts: PeerPoolOptions,
    private readonly metrics: MeshMetrics,
    private readonly log: Logger,
  ) {
    tls.onReload(() => this.drain());
  }

  /**
   * A connected session to the proxy of `node` at host:port, reusing an open
   * one: the session itself when it is connected (the common case, no
   * promise), else a promise of it.
   */
  acquire(host: string, port: number, node: string): ClientHttp2Session | Promise<ClientHttp2Session> {
    const byPort = this.entries.get(host);
    const existing = byPort?.get(port);
    if (existing !== undefined && !existing.session.closed && !existing.session.destroyed) {
      if (existing.node === node) return existing.connected ? existing.session : existing.ready;
      existing.session.close();
    }
    if (this.closed) return Promise.reject(new PeerConnectError("proxy is shutting down"));
    const entry = this.open(host, port, node);
    if (byPort === undefined) this.entries.set(host, new Map([[port, entry]]));
    else byPort.set(port, entry);
    return entry.ready;
  }

  /** Closes every session gracefully; in-flight streams complete. */
  drain(): void {
    const all = this.all();
    this.entries.clear();
    for (const entry of all) entry.session.close();
  }

  /** The connections held now, for the admin page. */
  connections(): PeerConnection[] {
    const out: PeerConnection[] = [];
    for (const [address, byPort] of this.entries) {
      for (const [port, e] of byPort) {
        const s = e.session;
        const state = s.closed || s.destroyed ? "closing" : e.connected ? "connected" : "connecting";
        out.push({ address, port, state, streams: s[OPEN_STREAMS] });
      }
    }
    return out;
  }

  private all(): Entry[] {
    const out: Entry[] = [];
    for (const byPort of this.entries.values()) out.push(...byPort.values());
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    const sessions = this.all().map((e) => e.session);
    this.drain();
    await Promise.all(
      sessions.map((s) => (s.closed ? Promise.resolve() : new Promise<void>((r) => s.once("close", () => r())))),
    );
  }

  private open(host: string, port: number, node: string): Entry {
    const key = `${host}:${port}`;
    const { rule, connectTimeoutMs, headers } = this.opts;
    const material = this.tls.current;
    const session = h2connect(`https://${host.includes(":") ? `[${host}]` : host}:${port}`, {
      // Peers are dialled by pod IP; what they must prove is the mesh identity, and the node.
      createConnection: () => connectToPeer(host, port, material, rule, node),
      settings: { enablePush: false, initialWindowSize: HOP_WINDOW_BYTES, maxHeaderListSize: headers.maxHeaderListSize },
      maxHeaderListPairs: headers.maxHeaderListPairs,
      maxSessionMemory: 64,
    });
    // The handlers below run on later events, after `entry` exists.
    const ready = new Promise<ClientHttp2Session>((resolve, reject) => {
      const timer = setTimeout(() => {
        session.destroy(new PeerConnectError(`connect timeout after ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
      session.once("connect", () => {
        clearTimeout(timer);
        entry.connected = true;
        session.setLocalWindowSize(HOP_WINDOW_BYTES);
        this.metrics.tlsHandshakes.labels("client").inc();
        this.metrics.openConnections.labels("peers").inc();
        this.log.debug("peer_connected", { peer: key });
        entry.liveness = setInterval(checkLiveness, connectTimeoutMs, entry, key, this.log);
        entry.liveness.unref();
        resolve(session);
      });
      session.once("error", (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (!entry.connected) {
          const reason = err instanceof PeerConnectError ? "handshake_timeout" : classifyTlsError(err.code, err.message);
          if (err.code !== "ECONNREFUSED" && err.code !== "EHOSTUNREACH" && err.code !== "ENETUNREACH") {
            this.metrics.tlsHandshakeFailures.labels("client", reason).inc();
          }
          this.log.warn("peer_connect_failed", { peer: key, node, reason, error: errorMessage(err) });
          reject(new PeerConnectError(`connection to peer ${key} failed: ${errorMessage(err)}`));
        }
      });
    });
    const entry: Entry = { node, session: Object.assign(session, { [OPEN_STREAMS]: 0 }), ready, connected: false, pingOutstanding: false };
    // Nobody may be waiting on `ready` when a later failure rejects it.
    ready.catch(() => undefined);
    const forget = (): void => {
      const byPort = this.entries.get(host);
      if (byPort?.get(port)?.session !== session) return;
      byPort.delete(port);
      if (byPort.size === 0) this.entries.delete(host);
    };
    session.on("goaway", forget);
    session.on("close", () => {
      clearInterval(entry.liveness);
      forget();
      if (entry.connected) this.metrics.openConnections.labels("peers").dec();
    });
    return entry;
  }
}

/**
 * A peer that stops answering (its node lost power, the link was cut) sends
 * neither FIN nor RST, and TCP would keep the connection for many minutes,
 * every request on it waiting for its timeout. So every connectTimeoutMs a
 * PING goes out, and a session whose previous PING is still unanswered is
 * destroyed: its streams fail (idempotent ones are retried elsewhere) and the
 * next request dials again. The verdict waits for setImmediate, after the poll
 * phase, so an ack that arrived while the event loop was busy is seen first.
 */
function checkLiveness(entry: Entry, key: string, log: Logger): void {
  if (entry.session.closed || entry.session.destroyed) return;
  if (entry.pingOutstanding) {
    setImmediate(endIfUnresponsive, entry, key, log);
    return;
  }
  entry.pingOutstanding = true;
  try {
    entry.session.ping((err) => {
      if (err === null) entry.pingOutstanding = false;
    });
  } catch {
    // The session is closing; its 'close' clears the interval.
  }
}

function endIfUnresponsive(entry: Entry, key: string, log: Logger): void {
  if (!entry.pingOutstanding || entry.session.destroyed) return;
  log.warn("peer_unresponsive", { peer: key });
  entry.session.destroy(new PeerConnectError(`peer ${key} did not answer a ping`));
}
