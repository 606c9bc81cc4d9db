// What every listener needs: binding, connection accounting for drains and
// metrics, and a clear answer to requests node's parser rejects.
import { STATUS_CODES, type Server as HttpServer } from "node:http";
import type { Server as NetServer, Socket } from "node:net";
import { headerSafe } from "../http/headers";
import type { Listener, MeshMetrics } from "../telemetry/metrics";

export function listen(server: NetServer, ip: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once("error", onError);
    server.listen(port, ip, () => {
      server.off("error", onError);
      const addr = server.address();
      resolve(typeof addr === "object" && addr !== null ? addr.port : port);
    });
  });
}

export class ConnectionTracker {
  readonly sockets = new Set<Socket>();

  constructor(server: NetServer | HttpServer, metrics: MeshMetrics, listener: Listener | "peers") {
    const gauge = metrics.openConnections.labels(listener);
    server.on("connection", (socket: Socket) => this.add(socket, gauge));
  }

  add(socket: Socket, gauge: { inc(): void; dec(): void }): void {
    this.sockets.add(socket);
    gauge.inc();
    socket.once("close", () => {
      this.sockets.delete(socket);
      gauge.dec();
    });
  }

  /** Resolves when `idle()` holds or the deadline (epoch ms) passes. */
  async waitIdle(idle: () => boolean, deadline: number): Promise<void> {
    while (!idle() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }
}

const PARSE_REASONS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: "request head larger than limits.maxHeaderBytes",
  HPE_INVALID_METHOD: "invalid method",
  HPE_INVALID_URL: "invalid request target",
  HPE_INVALID_VERSION: "invalid HTTP version",
  HPE_INVALID_HEADER_TOKEN: "invalid header name or value",
  HPE_INVALID_CONTENT_LENGTH: "invalid Content-Length",
  HPE_UNEXPECTED_CONTENT_LENGTH: "both Content-Length and Transfer-Encoding (request smuggling)",
  HPE_INVALID_TRANSFER_ENCODING: "invalid Transfer-Encoding",
  HPE_INVALID_CHUNK_SIZE: "invalid chunk size",
  HPE_LF_EXPECTED: "bare CR or LF in request head",
  HPE_CR_EXPECTED: "bare LF in request head",
  HPE_INVALID_CONSTANT: "malformed request line",
  ERR_HTTP_REQUEST_TIMEOUT: "request head not received in time (limits.headersTimeoutMs)",
};

/**
 * node:http hands CONNECT to a separate 'connect' event and, without a
 * listener, drops the socket silently; where the mesh does not tunnel (HTTP/1.1
 * on 4141, which is for operators' checks) it answers it like any refusal.
 */
export function refuseTunnels(server: HttpServer): void {
  const body = "CONNECT tunnels are not taken here: send CONNECT to the node's outgoing listener\n";
  const head =
    `HTTP/1.1 405 Method Not Allowed\r\nl5d-err: ${body.trim()}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n`;
  server.on("connect", (_req: unknown, socket: Socket) => {
    socket.on("error", () => socket.destroy());
    socket.end(head + body);
  });
  refuseUpgrades(server);
}

/** Upgrades (WebSocket, h2c) are connection-level and not forwarded. */
function refuseUpgrades(server: HttpServer): void {
  server.on("upgrade", (_req: unknown, socket: Socket) => {
    const msg = "protocol upgrades are not supported by the mesh\n";
    socket.on("error", () => socket.destroy());
    socket.end(
      `HTTP/1.1 501 Not Implemented\r\nl5d-err: ${msg.trim()}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
        `content-length: ${Buffer.byteLength(msg)}\r\nconnection: close\r\n\r\n${msg}`,
    );
  });
}

/** Answers a request node's HTTP parser rejected: status, l5d-err, one-line body, close. */
export function answerClientError(err: NodeJS.ErrnoException & { reason?: string }, socket: Socket): void {
  if (err.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  const status =
    err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
  const reason = headerSafe(`malformed request: ${PARSE_REASONS[err.code ?? ""] ?? err.reason ?? err.code ?? "parse error"}`);
  const body = `${reason}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nl5d-err: ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
